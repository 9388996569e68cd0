"""The master's certificate authority.

- `certificates`: pure functions (no IO) that make the CA, the master's TLS certificate and the
  certificates signed from a CSR, and the CA fingerprint that enrolment tokens carry.
- `store`: the PKI directory on disk (``ca.key``, ``ca.crt``, ``master.key``, ``master.crt``) and
  `ensure`, which ``slapos master init`` runs.
- `errors`: `PkiError` and its two kinds (a refused request, a broken PKI directory).
"""
