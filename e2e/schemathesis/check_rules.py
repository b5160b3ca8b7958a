"""Each `[[operations]]` rule of schemathesis.toml applies to the operations it names, and only
to them: every rule matches at least one operation of the document, and no operation is matched
by two rules.

Schemathesis ORs a rule's `include-*` keys (each key is its own filter of the rule's set), so
`include-path = "/api/connect"` beside `include-method = "POST"` applied that rule to every POST
of the API — and so every operation was allowed a 400. A rule names method and path together in
one `include-name` ("POST /api/connect") or `include-name-regex`, and this check keeps it so.

usage: python check_rules.py schemathesis.toml openapi.json
"""

import json
import sys
from types import SimpleNamespace

from schemathesis.config import SchemathesisConfig


def main(config_path: str, document_path: str) -> int:
    project = SchemathesisConfig.from_path(config_path).projects.get_default()
    rules = project.operations.operations
    document = json.load(open(document_path, encoding="utf-8"))
    matched_by_rule = {i: [] for i in range(len(rules))}
    problems = []
    for path, item in sorted(document["paths"].items()):
        for method in item:
            if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
                continue
            label = f"{method.upper()} {path}"
            operation = SimpleNamespace(
                label=label, method=method.upper(), path=path, tags=[], definition=None,
                operation_id=None,
            )
            rules_here = [i for i, r in enumerate(rules) if r._filter_set.applies_to(operation)]
            for i in rules_here:
                matched_by_rule[i].append(label)
            if len(rules_here) > 1:
                problems.append(f"{label} is matched by rules {rules_here} (one rule per operation)")
    for i, labels in matched_by_rule.items():
        if not labels:
            problems.append(f"rule {i} matches no operation of the document")
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        total = sum(len(v) for v in matched_by_rule.values())
        print(f"{len(rules)} rules, {total} operations, one rule each")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
