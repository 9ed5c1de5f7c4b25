"""Fuzzing the provider layer: hostile answers, served over loopback, checked by an oracle.

mutations.py  what a hostile cloud does to an answer (hypothesis strategies)
server.py     the fuzz server: the simulator's answer, then the drawn mutation
endpoints.py  one table per cloud: which call reads which request path
contract.py   the oracle: what a call may return (independent of the product)
harness.py    one example end to end, failure classes, the hypothesis driver
"""
