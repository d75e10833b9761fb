"""Services: replicated or global tasks of one container template, kept running.

    scheduling.py   what a service needs now, as a pure function of what runs
    constraints.py  --constraint node.hostname==h2, parsed and matched
    rules.py        what `service create` may ask for, checked before anything is stored
    election.py     one controller leads at a time: an etcd key bound to its lease
    reconciler.py   the leader's loop: read, plan, write under the leader's fence
"""
