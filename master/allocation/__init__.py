"""Allocation as pure functions, split like Nomad's scheduler: filter -> score -> plan.

`plan.choose_partition` and `plan.choose_host` take plain candidates and a demand and return a
choice or None; the services in `master.services.allocator` fetch the candidates under locks and
apply the choice.
"""
