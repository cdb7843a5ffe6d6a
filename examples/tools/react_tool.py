#!/usr/bin/env python3
"""react_tool.py ACTION INPUT: the tools of examples/react-agent.yaml.

  search_docs QUERY       best matching passages of a small documentation set
  calculator EXPRESSION   arithmetic (+ - * / ** % and parentheses), no names

Prints one JSON object {"tool", "input", "observation"} on stdout. Unknown
actions and bad expressions are reported as observations (exit 0) so the
agent can correct itself; only a bad command line exits non-zero."""
import ast
import json
import operator
import re
import sys

DOCS = [
    ("quotas", "Each project has 50 GPU-hours per month on the pro plan and 500 on enterprise."),
    ("billing", "Invoices are issued on the 1st; VAT follows the customer's billing country."),
    ("export", "Export all data from Settings > Data > Export; archives are kept for 7 days."),
    ("sla", "The enterprise plan guarantees 99.9% monthly availability and 1-hour support response."),
    ("limits", "The API allows 600 requests per minute per token; bursts up to 1200 are accepted."),
]

OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
       ast.Div: operator.truediv, ast.Pow: operator.pow, ast.Mod: operator.mod,
       ast.USub: operator.neg, ast.UAdd: operator.pos}


def calc(node):
    if isinstance(node, ast.Expression):
        return calc(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in OPS:
        left, right = calc(node.left), calc(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("exponent too large")
        return OPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in OPS:
        return OPS[type(node.op)](calc(node.operand))
    raise ValueError("only numbers and + - * / ** % are allowed")


def search(query):
    words = set(re.findall(r"[a-z0-9]+", query.lower()))
    scored = []
    for doc_id, text in DOCS:
        score = len(words & set(re.findall(r"[a-z0-9]+", text.lower())))
        if score:
            scored.append((score, doc_id, text))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [{"id": d, "text": t} for _, d, t in scored[:2]] or "no matching passage"


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    action, arg = argv[1], argv[2]
    if action == "search_docs":
        obs = search(arg)
    elif action == "calculator":
        try:
            obs = calc(ast.parse(arg, mode="eval"))
        except (ValueError, SyntaxError, ZeroDivisionError, OverflowError) as e:
            obs = f"error: {e}"
    else:
        obs = f"error: unknown tool {action!r}; use search_docs or calculator"
    json.dump({"tool": action, "input": arg, "observation": obs}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
