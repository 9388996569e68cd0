"""Partita's zc.buildout recipes, used by software releases as ``recipe = partita:<name>``.

One module per recipe (`slapconfiguration`, `publish`, `request`, `wrapper`, `promise`,
`template`), what they share in `common`, and the promise checks the generated plugins import in
`checks`. The guide for software release authors is ``docs/software-releases.md``.
"""
