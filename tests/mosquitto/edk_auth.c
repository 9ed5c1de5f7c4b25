/*
 * edk_auth: a Mosquitto 2.0 (plugin API v5) auth/ACL plugin that makes a test
 * broker behave like Energydata.dk's (mqtts.energydata.dk:8883):
 *
 *   - the API token is the MQTT USERNAME and there is NO password
 *     (MOSQ_EVT_BASIC_AUTH): a known token with an empty/absent password is
 *     accepted, anything else gets CONNACK "not authorised" (3.1.1 code 5);
 *   - a token may publish and subscribe only under the topic prefixes of the
 *     datasets it grants: "<prefix>" itself (multi-value messages) and
 *     "<prefix>/..." (MOSQ_EVT_ACL_CHECK);
 *   - "if authorization does not succeed, the client is immediately
 *     disconnected": a denied PUBLISH kicks the client, so a QoS 1 publish never
 *     gets its PUBACK (see tests/mqtt_broker.py for what 2.0.11 does).
 *
 * For tests of what a client does while it waits, a token may be slow: its
 * CONNACK and SUBACKs come `delay` ms late. The plugin logs "edk_auth: holding
 * the CONNACK|SUBACK of <client id>" and then sleeps in the auth/ACL check, so the
 * whole (single-threaded) broker pauses: keep delays short.
 *
 * Options (mosquitto.conf):
 *   plugin /path/edk_auth.so
 *   plugin_opt_tokens /path/tokens.txt      lines "<token> <prefix>[,<prefix>...]"
 *                                           and optionally ",delay=<ms>";
 *                                           '#' starts a comment line
 *   plugin_opt_kick_on_deny true|false      default true (false only to observe
 *                                           the broker's own behaviour)
 *
 * The tokens file is read at start and again on every reload (SIGHUP to the
 * broker, MOSQ_EVT_RELOAD). Each (re)load logs "edk_auth: loaded N token(s)".
 *
 * Builds against the mosquitto-dev headers only (no libmosquitto-dev): the few
 * constants of <mosquitto.h> it needs are defined below when that header is
 * absent.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__has_include)
#  if __has_include(<mosquitto.h>)
#    include <mosquitto.h>
#  endif
#endif
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#ifndef LIBMOSQUITTO_MAJOR
/* Values of enum mosq_err_t and the log levels in Mosquitto 2.0's mosquitto.h. */
#  define MOSQ_ERR_SUCCESS 0
#  define MOSQ_ERR_NOMEM 1
#  define MOSQ_ERR_INVAL 3
#  define MOSQ_ERR_AUTH 11
#  define MOSQ_ERR_ACL_DENIED 12
#  define MOSQ_ERR_UNKNOWN 13
#  define MOSQ_ERR_PLUGIN_DEFER 17
#  define MOSQ_LOG_INFO (1 << 0)
#  define MOSQ_LOG_NOTICE (1 << 1)
#  define MOSQ_LOG_WARNING (1 << 2)
#  define MOSQ_LOG_ERR (1 << 3)
#endif

struct edk_token {
	char *token;
	char **prefixes;
	int prefix_count;
	long delay_ms;
};

static mosquitto_plugin_id_t *plugin_id = NULL;
static char *tokens_path = NULL;
static bool kick_on_deny = true;
static struct edk_token *tokens = NULL;
static int token_count = 0;

static void free_tokens(struct edk_token *list, int count)
{
	for(int i = 0; i < count; i++){
		for(int j = 0; j < list[i].prefix_count; j++){
			free(list[i].prefixes[j]);
		}
		free(list[i].prefixes);
		free(list[i].token);
	}
	free(list);
}

static char *strip(char *s)
{
	char *end;
	while(*s && isspace((unsigned char)*s)) s++;
	end = s + strlen(s);
	while(end > s && isspace((unsigned char)end[-1])) end--;
	*end = '\0';
	return s;
}

/* (Re)read the tokens file. On any error the previous table is kept. */
static int load_tokens(void)
{
	FILE *fp;
	char line[4096];
	struct edk_token *list = NULL;
	int count = 0;
	int lineno = 0;

	if(tokens_path == NULL){
		mosquitto_log_printf(MOSQ_LOG_ERR, "edk_auth: plugin_opt_tokens is not set");
		return MOSQ_ERR_INVAL;
	}
	fp = fopen(tokens_path, "r");
	if(fp == NULL){
		mosquitto_log_printf(MOSQ_LOG_ERR, "edk_auth: cannot open %s", tokens_path);
		return MOSQ_ERR_INVAL;
	}
	while(fgets(line, sizeof(line), fp)){
		char *s, *token, *rest, *saveptr = NULL, *p;
		struct edk_token *grown;
		struct edk_token *t;

		lineno++;
		s = strip(line);
		if(*s == '\0' || *s == '#') continue;
		token = s;
		rest = token;
		while(*rest && !isspace((unsigned char)*rest)) rest++;
		if(*rest == '\0'){
			mosquitto_log_printf(MOSQ_LOG_WARNING,
					"edk_auth: %s:%d: no prefixes, line ignored", tokens_path, lineno);
			continue;
		}
		*rest++ = '\0';
		rest = strip(rest);

		grown = realloc(list, sizeof(*list) * (size_t)(count + 1));
		if(grown == NULL) goto nomem;
		list = grown;
		t = &list[count++];
		memset(t, 0, sizeof(*t));
		t->token = strdup(token);
		if(t->token == NULL) goto nomem;
		for(p = strtok_r(rest, ", \t", &saveptr); p; p = strtok_r(NULL, ", \t", &saveptr)){
			char **pg;
			if(strncmp(p, "delay=", 6) == 0){
				t->delay_ms = strtol(p + 6, NULL, 10);
				continue;
			}
			pg = realloc(t->prefixes, sizeof(char *) * (size_t)(t->prefix_count + 1));
			if(pg == NULL) goto nomem;
			t->prefixes = pg;
			/* A trailing '/' in the file is tolerated: "dtu-b101/" == "dtu-b101". */
			while(strlen(p) > 1 && p[strlen(p) - 1] == '/') p[strlen(p) - 1] = '\0';
			t->prefixes[t->prefix_count] = strdup(p);
			if(t->prefixes[t->prefix_count] == NULL) goto nomem;
			t->prefix_count++;
		}
	}
	fclose(fp);
	free_tokens(tokens, token_count);
	tokens = list;
	token_count = count;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "edk_auth: loaded %d token(s) from %s", count, tokens_path);
	return MOSQ_ERR_SUCCESS;

nomem:
	fclose(fp);
	free_tokens(list, count);
	return MOSQ_ERR_NOMEM;
}

static const struct edk_token *find_token(const char *username)
{
	if(username == NULL) return NULL;
	for(int i = 0; i < token_count; i++){
		if(strcmp(tokens[i].token, username) == 0) return &tokens[i];
	}
	return NULL;
}

/* True when `topic` is `prefix` or lies below it ("prefix/..."). */
static bool under_prefix(const char *topic, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(topic, prefix, n) == 0 && (topic[n] == '\0' || topic[n] == '/');
}

static bool token_allows(const struct edk_token *t, const char *topic)
{
	for(int i = 0; i < t->prefix_count; i++){
		if(under_prefix(topic, t->prefixes[i])) return true;
	}
	return false;
}

/* Pause the broker for a slow token's delay, saying what is held back. */
static void hold(const struct edk_token *t, struct mosquitto *client, const char *what)
{
	struct timespec pause;
	const char *clientid;

	if(t == NULL || t->delay_ms <= 0) return;
	clientid = mosquitto_client_id(client);
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "edk_auth: holding the %s of %s for %ld ms",
			what, clientid ? clientid : "?", t->delay_ms);
	pause.tv_sec = t->delay_ms / 1000;
	pause.tv_nsec = (t->delay_ms % 1000) * 1000000L;
	while(nanosleep(&pause, &pause) != 0 && errno == EINTR){}
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	(void)event;
	(void)userdata;

	if(ed->password != NULL && ed->password[0] != '\0'){
		/* Energydata.dk tokens go in the username; a password is never sent. */
		return MOSQ_ERR_AUTH;
	}
	if(find_token(ed->username) == NULL){
		return MOSQ_ERR_AUTH;
	}
	hold(find_token(ed->username), ed->client, "CONNACK");
	return MOSQ_ERR_SUCCESS;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const struct edk_token *t;
	const char *clientid;
	(void)event;
	(void)userdata;

	if(ed->access == MOSQ_ACL_UNSUBSCRIBE){
		return MOSQ_ERR_SUCCESS;
	}
	t = find_token(mosquitto_client_username(ed->client));
	if(t == NULL){
		/* Token removed by a reload while the client stayed connected. */
		return MOSQ_ERR_ACL_DENIED;
	}
	if(ed->access == MOSQ_ACL_SUBSCRIBE){
		/* Filters starting with a wildcard ("#", "+/...") are accepted, as the
		 * documented `mosquitto_sub -t '#'` is: delivery is still limited per
		 * message by the READ check below. Anything else must lie under a
		 * granted prefix. */
		if(ed->topic[0] == '#' || ed->topic[0] == '+' || token_allows(t, ed->topic)){
			hold(t, ed->client, "SUBACK");
			return MOSQ_ERR_SUCCESS;
		}
		return MOSQ_ERR_ACL_DENIED;
	}
	if(token_allows(t, ed->topic)){
		return MOSQ_ERR_SUCCESS;
	}
	if(ed->access == MOSQ_ACL_WRITE){
		clientid = mosquitto_client_id(ed->client);
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				"edk_auth: denied PUBLISH on '%s' (q%d) from %s%s",
				ed->topic, ed->qos, clientid ? clientid : "?",
				kick_on_deny ? ": disconnecting the client" : "");
		if(kick_on_deny && clientid != NULL){
			mosquitto_kick_client_by_clientid(clientid, false);
		}
	}
	return MOSQ_ERR_ACL_DENIED;
}

static int on_reload(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)event_data;
	(void)userdata;
	load_tokens();
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	int rc;
	(void)userdata;

	plugin_id = identifier;
	for(int i = 0; i < option_count; i++){
		if(strcmp(options[i].key, "tokens") == 0){
			free(tokens_path);
			tokens_path = strdup(options[i].value);
			if(tokens_path == NULL) return MOSQ_ERR_NOMEM;
		}else if(strcmp(options[i].key, "kick_on_deny") == 0){
			kick_on_deny = strcmp(options[i].value, "false") != 0;
		}
	}
	rc = load_tokens();
	if(rc) return rc;

	rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	if(rc) return rc;
	rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
	if(rc) return rc;
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_RELOAD, on_reload, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;

	if(plugin_id){
		mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
		mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
		mosquitto_callback_unregister(plugin_id, MOSQ_EVT_RELOAD, on_reload, NULL);
	}
	free_tokens(tokens, token_count);
	tokens = NULL;
	token_count = 0;
	free(tokens_path);
	tokens_path = NULL;
	return MOSQ_ERR_SUCCESS;
}
