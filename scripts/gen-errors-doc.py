#!/usr/bin/env python3
"""Regenerate docs/errors.md from the catalogue in errors/index.ts (sections follow its comments)."""
import re, pathlib
root = pathlib.Path(__file__).resolve().parent.parent
src = (root / 'errors/index.ts').read_text()
pat = re.compile(r"(KAKUIN_E_[A-Z0-9_]+): \{ status: (\d+), summary: '((?:[^'\\]|\\.)*)'(, retired: true)? \}")
out = ["# kakuin error codes", "",
"Every error kakuin returns to a client is JSON `{\"code\": \"KAKUIN_E_...\", \"message\": \"...\"}` with the HTTP",
"status below. The code is stable: clients and scripts may branch on it. The message is for people and may change.",
"The internal cause of a 5xx error is written to the server log, never sent to the client.",
"The `kakuin` command prints `kakuin: <code>: <message>` and exits 1 (2 for usage errors).",
"OCSP requests are answered with OCSP error statuses (`malformedRequest`, `unauthorized`, ...) as RFC 6960 requires;",
"the code appears in the responder's log.",
"ACME requests (`/acme/...`) are answered with RFC 7807 problem documents (`application/problem+json`, RFC 8555 §6.7):",
"`type` is the ACME error type each code below names (`urn:ietf:params:acme:error:...`), `kakuinCode` the KAKUIN code (not `code`, which certbot's ACME library refuses).", "",
"Codes are never reused: a retired code stays in this table, marked retired.", "",
"This file is generated from `errors/index.ts` by `scripts/gen-errors-doc.py`; a test fails when they disagree.", ""]
for sec in re.split(r"  // ---- ", src)[1:]:
    title = sec.split('-', 1)[0].strip()
    rows = pat.findall(sec)
    if not rows:
        continue
    out += [f"## {title[0].upper() + title[1:]}", "", "| code | HTTP | meaning |", "|---|---|---|"]
    for code, status, summary, retired in rows:
        summary = summary.replace("\\'", "'")
        out.append(f"| `{code}` | {status} | {'(retired) ' if retired else ''}{summary} |")
    out.append("")
(root / 'docs/errors.md').write_text("\n".join(out))
