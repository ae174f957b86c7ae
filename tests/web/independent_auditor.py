"""Check a Clearhouse coalition's sealed months from what it publishes, with none of its code.

What it needs: Python 3.11, the ``cryptography`` package (for Ed25519) and an auditor token.
``audit(get)`` downloads, through ``get`` (a GET of a path with the auditor's token that returns
the body of a 200 and raises on anything else), every sealed month (``/v1/audit/periods``), each
month's canonical entry lines, each settled month's statements, every partner key and every
coalition key, and then checks:

- each month's root: the RFC 9162 Merkle tree head over its lines (leaf SHA-256(0x00 ‖ line),
  node SHA-256(0x01 ‖ left ‖ right), split at the largest power of two below the number of
  leaves; the empty tree's head is SHA-256 of nothing), its root SHA-256(previous root ‖ head),
  and the chain: each month's previous root is the root of the month before, 32 zero bytes
  before the first; and that every line is canonical (RFC 8785) and belongs to the month;
- each statement: SHA-256 of its canonical form (the document without ``integrity``, RFC 8785)
  and its Ed25519 signature with the coalition key that ``integrity.key_id`` names; that it
  states the month's root; and that the coalition's lists every partner with entries;
- each entry's partner signature: the RFC 9421 signature base the line keeps ends in the
  ``@signature-params`` that its ``Signature-Input`` carries and covers the components listed
  there; the signature verifies over the base with the key that ``keyid`` names, a key of the
  entry's partner; and the base is of this entry's request: a POST to its path (an issue's
  or a redeem's, or the batch it was an item of), for its purpose, over the body whose digest
  the line keeps. Lines whose ``evidence`` is not
  ``partner_signature`` (operator, settlement and unsigned entries) are counted by it.

Nothing stops at a mismatch: the report counts every check made and lists every problem.
Run as a script, it audits the coalition at ``CLEARHOUSE_URL`` with ``AUDITOR_TOKEN``, prints
what it checked and what does not hold, and exits 1 unless everything verifies.
"""

import base64
import hashlib
import json
from urllib.parse import quote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FIRST_PREVIOUS_ROOT = bytes(32)
INTEGER_MAX = 2**53 - 1
"""RFC 8785 writes numbers as IEEE 754 doubles: beyond this, an integer is not written as is."""
SIGNED_PATHS = {"issue": "/v1/transactions/issue", "redeem": "/v1/transactions/redeem"}
BATCH_PATH = "/v1/transactions/batch"
"""An issue or a redeem may have been an item of a batch, whose request the partner signed."""
PURPOSES = {"issue": "accrual", "redeem": "redemption"}


# --- RFC 8785 ------------------------------------------------------------------------------


class NotCanonicalizable(ValueError):
    """A value whose RFC 8785 form this file does not reproduce (Clearhouse writes none)."""


def _refuse_number(text: str) -> object:
    raise NotCanonicalizable(f"a non-integer number {text}")


def _integer(text: str) -> int:
    if abs(int(text)) > INTEGER_MAX:
        raise NotCanonicalizable(f"an integer beyond 2**53: {text}")
    return int(text)


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names) or not all(name.isascii() for name in names):
        raise NotCanonicalizable(f"repeated or non-ASCII member names: {names}")
    return dict(pairs)


def parse(document: bytes) -> object:
    """JSON that RFC 8785 canonicalises as ``canonical`` does: no float, no integer beyond
    2**53, member names ASCII and each once (a ValueError otherwise)."""
    return json.loads(
        document,
        parse_float=_refuse_number,
        parse_constant=_refuse_number,
        parse_int=_integer,
        object_pairs_hook=_object,
    )


def canonical(document: object) -> bytes:
    """RFC 8785 (JCS) of a document ``parse`` accepted: for strings, safe integers, booleans,
    null, lists and objects with ASCII names, JCS is sorted names, no whitespace, JSON's
    string escapes, and UTF-8 as it is."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


# --- RFC 9162 and the chain ----------------------------------------------------------------


def tree_head(leaves: list[bytes]) -> bytes:
    """The RFC 9162 (section 2.1.1) Merkle tree head over ``leaves``, in their order."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    split = 1 << ((len(leaves) - 1).bit_length() - 1)  # the largest power of two below n
    left, right = tree_head(leaves[:split]), tree_head(leaves[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_problems(sealed: dict, lines: list[bytes], previous_root: str) -> list[str]:
    """What does not hold of a sealed month's published head, root and chain link."""
    head = tree_head(lines)
    root = hashlib.sha256(bytes.fromhex(sealed["previous_root"]) + head).hexdigest()
    problems = []
    if sealed["previous_root"] != previous_root:
        problems.append("its previous_root is not the root of the month before")
    if len(lines) != sealed["entry_count"]:
        problems.append(f"{len(lines)} entry lines served, {sealed['entry_count']} sealed")
    if head.hex() != sealed["tree_head"]:
        problems.append("the tree head of its entry lines is not the published tree_head")
    if root != sealed["root"]:
        problems.append("SHA-256(previous_root ‖ tree head of its lines) is not its root")
    return problems


# --- RFC 9421: the partner's signature on an entry -----------------------------------------


def signed_request(entry: dict) -> tuple[tuple[str, ...], str] | None:
    """The paths the request that made ``entry`` may have gone to, and its ``Data-Purpose``
    (None: no partner's request makes such an entry). An issue or a redeem went to its own path
    or, as an item, to a batch's. A reversal's purpose is that of what it reverses, told by its
    member posting: a reversed issue takes points from the member, a reversed redeem gives.
    A capture's redeem names its hold: its request went to the hold's capture."""
    if entry.get("hold_id") is not None:
        return (f"/v1/holds/{entry['hold_id']}/capture",), "redemption"
    if entry["kind"] in SIGNED_PATHS:
        return (SIGNED_PATHS[entry["kind"]], BATCH_PATH), PURPOSES[entry["kind"]]
    if entry["kind"] != "reversal":
        return None
    member = [p["amount"] for p in entry["postings"] if p["account"].startswith("member:")]
    purpose = "accrual" if member and member[0] < 0 else "redemption"
    return (f"/v1/transactions/{entry['reversal_of']}/reversals",), purpose


def partner_signature_problems(entry: dict, partner_keys: dict[str, dict]) -> list[str]:
    """What does not hold of an entry's partner signature. The fields have one shape, one
    label: ``label=("@method" ...);created=...;keyid="...";alg="ed25519";nonce="..."`` and
    ``label=:base64:``; the base has one ``"component": value`` line per component covered,
    then ``"@signature-params": ("@method" ...);created=...``."""
    base = entry["signature_base"]
    if base is None or entry["signature_input"] is None or entry["signature"] is None:
        return ["it says partner_signature but lacks its signature fields or base"]
    label, _, params = entry["signature_input"].partition("=")
    signature_label, _, value = entry["signature"].partition("=")
    if signature_label != label or len(value) < 2 or value[0] != ":" or value[-1] != ":":
        return [f"its Signature is not one byte sequence labelled {label}"]
    *component_lines, last = base.split("\n")
    fields = {}
    for line in component_lines:
        name, _, field_value = line.partition(": ")
        fields[name] = field_value
    covered, _, parameter_text = params.partition(")")
    parameters = {}
    for parameter in parameter_text.split(";")[1:]:
        name, _, parameter_value = parameter.partition("=")
        parameters[name] = parameter_value.strip('"')
    problems = []
    if last != f'"@signature-params": {params}':
        problems.append("its signature base does not end in its Signature-Input's parameters")
    if list(fields) != covered.removeprefix("(").split():
        problems.append("its signature base covers other components than its Signature-Input")
    key_id = parameters.get("keyid")
    key = partner_keys.get(key_id or "")
    if key is None or key["partner_id"] != entry["partner_id"]:
        problems.append(f"keyid {key_id} is no key of partner {entry['partner_id']}")
    elif parameters.get("alg", "ed25519") != "ed25519":
        problems.append(f"it claims the algorithm {parameters['alg']}, not ed25519")
    elif not signature_verifies(key, value[1:-1], base.encode()):
        problems.append(f"its partner signature does not verify with key {key_id}")
    return problems + request_problems(entry, fields)


def request_problems(entry: dict, fields: dict[str, str]) -> list[str]:
    """Whether the signature base is of the request that made ``entry``."""
    request = signed_request(entry)
    if request is None:
        return [f"no partner's request makes a {entry['kind']} entry"]
    paths, purpose = request
    problems = []
    if fields.get('"@method"') != "POST":
        problems.append("its signature base is not of a POST")
    target = urlsplit(fields.get('"@target-uri"', "")).path.lower()
    if target not in [path.lower() for path in paths]:
        problems.append(f"its signature base is not of a request to {' or '.join(paths)}")
    if fields.get('"data-purpose"') != purpose:
        problems.append(f"its signature base does not declare the purpose {purpose}")
    if fields.get('"content-digest"') != entry["content_digest"]:
        problems.append("its signature base covers another content-digest than its line's")
    return problems


def signature_verifies(key: dict, signature: str, message: bytes) -> bool:
    """Does ``signature`` (base64) verify over ``message`` with ``key`` (its ``public_key``:
    the 32 raw bytes of an Ed25519 key, base64)?"""
    public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
    try:
        public_key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- Statements ----------------------------------------------------------------------------


def statement_problems(
    body: bytes, sealed: dict, party: str, coalition_keys: dict[str, dict]
) -> list[str]:
    """What does not hold of a statement as served: its hash and signature over its RFC 8785
    form without ``integrity``, with the coalition key it names; the month, party and root."""
    try:
        statement = parse(body)
    except ValueError as exc:
        return [f"it cannot be canonicalised here: {exc}"]
    integrity = statement.pop("integrity", None)
    if not isinstance(integrity, dict):
        return ["it has no integrity block"]
    document = canonical(statement)
    problems = []
    if hashlib.sha256(document).hexdigest() != integrity["sha256"]:
        problems.append("SHA-256 of its canonical form is not its integrity.sha256")
    key = coalition_keys.get(integrity["key_id"])
    if key is None or integrity["algorithm"] != "ed25519":
        problems.append(f"it is signed by {integrity['key_id']}, which /v1/keys does not list")
    elif not signature_verifies(key, integrity["signature"], document):
        problems.append(f"its signature does not verify with key {integrity['key_id']}")
    expected = (sealed["period"], None if party == "coalition" else party, sealed["root"])
    if (statement["period"], statement["partner_id"], statement["ledger_root"]) != expected:
        problems.append("it names another period, partner or ledger root")
    return problems


# --- The audit -----------------------------------------------------------------------------


def download(get) -> dict:
    """Everything the audit reads, as the coalition serves it: bodies, not yet parsed.

    ``get(path)`` is a GET of ``path`` with the auditor's token: the body of a 200, or it
    raises.
    """
    periods = get("/v1/audit/periods")
    downloads = {
        "periods": periods,
        "entries": {},
        "statements": {},
        "partner_keys": get("/v1/audit/partner-keys"),
        "coalition_keys": get("/v1/keys"),
    }
    for sealed in json.loads(periods):
        period = quote(sealed["period"], safe="")
        downloads["entries"][sealed["period"]] = get(f"/v1/audit/periods/{period}/entries")
        if sealed["status"] != "settled":
            continue
        coalition = get(f"/v1/audit/statements/{period}")
        statements = downloads["statements"][sealed["period"]] = {"coalition": coalition}
        for partner in json.loads(coalition)["partners"]:
            path = f"/v1/audit/statements/{period}/{quote(partner['partner_id'], safe='')}"
            statements[partner["partner_id"]] = get(path)
    return downloads


def entry_problems(entry: dict, line: bytes, sealed: dict, partner_keys: dict) -> list[str]:
    """What does not hold of one entry line: its form, its month, its partner's signature."""
    problems = []
    if canonical(entry) != line:
        problems.append("its line is not its RFC 8785 form")
    if not sealed["starts_at"] <= entry["recorded_at"] < sealed["ends_at"]:
        problems.append("it was recorded outside the month")
    if entry["evidence"] == "partner_signature":
        problems += partner_signature_problems(entry, partner_keys)
    elif entry["signature"] is not None:
        problems.append(f"it carries a signature, yet its evidence is {entry['evidence']}")
    return problems


def month_statement_problems(
    statements: dict[str, bytes], sealed: dict, entries: list[dict], coalition_keys: dict
) -> list[str]:
    """What does not hold of a month's statements, each and together: a settled month has one
    per partner that issued, redeemed or reversed in it, and the coalition's."""
    problems = []
    for party, body in statements.items():
        found = statement_problems(body, sealed, party, coalition_keys)
        problems += [f"statement {party}: {p}" for p in found]
    traded = {e["partner_id"] for e in entries if e["kind"] in ("issue", "redeem", "reversal")}
    if statements and set(statements) - {"coalition"} != traded:
        problems.append("its statements are of other partners than those with entries")
    return problems


def verify(downloads: dict) -> dict:
    """The counts of every check made on ``downloads``, and every problem found."""
    checked = {
        "periods": 0,
        "entries": 0,
        "statement_hashes": 0,
        "statement_signatures": 0,
        "partner_signatures": 0,
        "entries_without_partner_signature": 0,
    }
    without: dict[str, int] = {}  # entries without a partner signature, by their evidence
    problems: list[str] = []
    partner_keys = {k["key_id"]: k for k in json.loads(downloads["partner_keys"])}
    coalition_keys = {  # the keys that sign statements (a webhook key does not)
        k["key_id"]: k
        for k in json.loads(downloads["coalition_keys"])["keys"]
        if "statement" in k["use"]
    }
    previous_root = FIRST_PREVIOUS_ROOT.hex()
    for sealed in json.loads(downloads["periods"]):
        period = sealed["period"]
        checked["periods"] += 1
        lines = downloads["entries"][period].splitlines()
        problems += [f"{period}: {p}" for p in root_problems(sealed, lines, previous_root)]
        previous_root = sealed["root"]
        entries = []
        for line in lines:
            try:
                entry = parse(line)
            except ValueError as exc:
                problems.append(f"{period}: a line that cannot be canonicalised here: {exc}")
                continue
            entries.append(entry)
            checked["entries"] += 1
            if entry["evidence"] == "partner_signature":
                checked["partner_signatures"] += 1
            else:
                checked["entries_without_partner_signature"] += 1
                without[entry["evidence"]] = without.get(entry["evidence"], 0) + 1
            found = entry_problems(entry, line, sealed, partner_keys)
            problems += [f"{period}: entry {entry['entry_id']}: {p}" for p in found]
        order = [(e["recorded_at"], e["entry_id"]) for e in entries]
        if order != sorted(order):
            problems.append(f"{period}: its lines are not in (recorded_at, entry_id) order")
        statements = downloads["statements"].get(period, {})
        checked["statement_hashes"] += len(statements)
        checked["statement_signatures"] += len(statements)
        found = month_statement_problems(statements, sealed, entries, coalition_keys)
        problems += [f"{period}: {p}" for p in found]
    outcome = "problems" if problems else "verifies" if checked["periods"] else "nothing_to_verify"
    return {
        "outcome": outcome,
        "checked": checked,
        "without_partner_signature": without,
        "problems": problems,
    }


def audit(get) -> dict:
    """Download everything through ``get`` (as ``download`` does) and verify it."""
    return verify(download(get))


def summary(report: dict) -> str:
    checked = report["checked"]
    without = report["without_partner_signature"]
    kinds = ", ".join(f"{n} {evidence}" for evidence, n in sorted(without.items())) or "none"
    return "\n".join(
        [
            f"{checked['periods']} sealed month(s): roots and chain recomputed from "
            f"{checked['entries']} entry lines",
            f"{checked['statement_hashes']} statement hash(es), "
            f"{checked['statement_signatures']} statement signature(s)",
            f"{checked['partner_signatures']} partner signature(s) on entries; "
            f"entries without one: {kinds}",
            *report["problems"],
            report["outcome"],
        ]
    )


if __name__ == "__main__":
    import os
    import urllib.request

    base_url, token = os.environ["CLEARHOUSE_URL"], os.environ["AUDITOR_TOKEN"]

    def get(path: str) -> bytes:
        request = urllib.request.Request(
            base_url + path, headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request) as answer:
            return answer.read()

    report = audit(get)
    print(summary(report))
    if report["outcome"] != "verifies":
        raise SystemExit(1)
