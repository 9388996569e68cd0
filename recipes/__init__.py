"""Partita's zc.buildout recipes, used by software releases as ``recipe = partita:<name>``.

One module per recipe (`slapconfiguration`, `publish`, `request`, `wrapper`, `promise`,
`template` and its Jinja2 mode `jinja_template`, `mkdirectory`, `generate_password`, `free_port`,
`switch_softwaretype`, …), what they share in `common`, and the promise checks the generated plugins import in
`checks`. The guide for software release authors is ``docs/software-releases.md``.
"""
