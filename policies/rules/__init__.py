"""Native rules, one per file, grouped in one package per area: iam/, cost/, sanity/, hardening/.

``base`` holds what a rule is built on; ``registry.all_rules()`` collects every rule declared in
the areas. Nothing is imported here, so a rule module that imports ``base`` never runs the rest.
"""
