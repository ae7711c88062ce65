"""docs/reference.md against the installed extension: nothing public left
out, nothing documented that does not exist, and an example for each entry.

Signatures are the lines of the ```text blocks that start with "retrain.";
each must resolve (as regprocedure) to a function of the extension, and every
function of schema retrain whose name does not start with "_" must be among
them.  Tables and views are the headings under "## Tables" and "## Views",
settings the first column of the table under "## Settings".
"""

import os
import re

from testlib import connect, run_suite, scalar

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "reference.md")


def read():
    with open(REFERENCE, encoding="utf-8") as f:
        return f.read()


def sections(text):
    """(level-2 title, level-3 heading, body) for each ### entry."""
    out = []
    chapter = None
    for block in re.split(r"^(?=#{2,3} )", text, flags=re.M):
        if block.startswith("## "):
            chapter = block.splitlines()[0][3:].strip()
        elif block.startswith("### "):
            heading, _, body = block.partition("\n")
            out.append((chapter, heading[4:].strip(), body))
    return out


def split_args(args):
    """Top-level comma split (a DEFAULT may hold quotes, never a comma here)."""
    parts, depth, current = [], 0, ""
    for ch in args:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts]


def documented_signatures(text):
    sigs = []
    for block in re.findall(r"```text\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            m = re.match(r"^retrain\.(\w+)\((.*?)\) → ", line)
            if not m:
                continue
            types = [re.sub(r"\s+DEFAULT\s.*$", "", a).split()[-1] for a in split_args(m.group(2))]
            sigs.append((line, f"retrain.{m.group(1)}({', '.join(types)})"))
    return sigs


def test_every_signature_exists_and_every_function_is_documented():
    text = read()
    sigs = documented_signatures(text)
    assert len(sigs) > 50, f"only {len(sigs)} signatures found"
    with connect() as conn:
        documented = {}
        for line, sig in sigs:
            try:
                oid = conn.execute("SELECT %s::regprocedure::oid", (sig,)).fetchone()[0]
            except Exception as e:  # noqa: BLE001 - reported with the line
                raise AssertionError(f"documented but not installed: {line}\n  ({e})")
            assert oid not in documented, f"documented twice: {sig}"
            documented[oid] = sig
        public = dict(conn.execute(
            "SELECT p.oid, p.oid::regprocedure::text FROM pg_proc p "
            "WHERE p.pronamespace = 'retrain'::regnamespace AND p.proname NOT LIKE '\\_%'").fetchall())
        missing = sorted(public[o] for o in set(public) - set(documented))
        assert not missing, f"installed but not in docs/reference.md: {missing}"
        internal = sorted(documented[o] for o in set(documented) - set(public))
        assert not internal, f"internal functions documented as public: {internal}"


def test_every_entry_has_an_example():
    for chapter, heading, body in sections(read()):
        if chapter == "Settings":
            continue
        assert "```sql" in body, f"no example under {heading} ({chapter})"


def test_tables_views_types_and_settings():
    entries = sections(read())
    names = {ch: set() for ch in ("Tables", "Views", "Types and operators")}
    for chapter, heading, _ in entries:
        if chapter in names:
            names[chapter] |= set(re.findall(r"`retrain\.(\w+)`", heading))
    with connect() as conn:
        tables = {r[0] for r in conn.execute(
            # the extension's own: the log's day and range partitions are the site's
            "SELECT relname FROM pg_class c WHERE relnamespace = 'retrain'::regnamespace AND relkind IN ('r', 'p') "
            "AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid "
            "AND d.deptype = 'e')")}
        views = {r[0] for r in conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'retrain'::regnamespace AND relkind IN ('v', 'm')")}
        types = {r[0] for r in conn.execute(
            "SELECT t.typname FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid "
            "WHERE t.typnamespace = 'retrain'::regnamespace "
            "AND (c.relkind = 'c' OR (t.typtype = 'b' AND t.typelem = 0))")}
        operators = {r[0] for r in conn.execute(
            "SELECT oprname FROM pg_operator WHERE oprnamespace = 'retrain'::regnamespace")}
        settings = {r[0] for r in conn.execute("SELECT name FROM pg_settings WHERE name LIKE 'retrain.%'")}
    assert names["Tables"] == tables, (names["Tables"] ^ tables)
    assert names["Views"] == views, (names["Views"] ^ views)
    assert names["Types and operators"] == types, (names["Types and operators"] ^ types)
    text = read()
    for op in operators:
        assert f"`retrain.{op}`" in text, f"operator retrain.{op} not documented"
    settings_part = text.split("## Settings", 1)[1]
    documented_settings = set(re.findall(r"^\| `(retrain\.\w+)` \|", settings_part, flags=re.M))
    assert documented_settings == settings, documented_settings ^ settings


def test_readme_tour_runs():
    """The README's five-minute tour, statement by statement, in a fresh
    database with the tables and roles it assumes."""
    readme = open(os.path.join(os.path.dirname(REFERENCE), "..", "README.md"), encoding="utf-8").read()
    tour = readme.split("## A five-minute tour in psql", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    # the two sign-offs are made by members of the two roles
    tour = tour.replace("SELECT retrain.approve('churn', 'v1', 'reviewer'", "SET SESSION AUTHORIZATION tour_alice; SELECT retrain.approve("
                        "'churn', 'v1', 'reviewer'").replace("SELECT retrain.approve('churn', 'v1', 'approver'",
                                                             "SET SESSION AUTHORIZATION tour_bob; SELECT retrain.approve("
                                                             "'churn', 'v1', 'approver'")
    tour = re.sub(r"(retrain\.approve\([^;]*;)", r"\1 RESET SESSION AUTHORIZATION;", tour)
    assert tour.count("SET SESSION AUTHORIZATION tour_") == 2 and tour.count("RESET SESSION AUTHORIZATION") == 2, tour
    setup = """
        CREATE TABLE scored_predictions AS
        SELECT 'v0' AS version, (i % 100) / 100.0 AS score, i % 3 = 0 AS label, (i % 120)::float8 AS amount
          FROM generate_series(1, 1000) i;
        CREATE TABLE training_snapshot AS SELECT (i % 72)::float8 AS tenure, 'plus' AS plan FROM generate_series(1, 500) i;
        CREATE ROLE tour_alice IN ROLE ml_reviewers;
        CREATE ROLE tour_bob IN ROLE product_owners;
    """
    with connect("postgres") as admin:
        admin.execute("DROP DATABASE IF EXISTS tour")
        admin.execute("CREATE DATABASE tour")
        for role in ("tour_alice", "tour_bob", "ml_reviewers", "product_owners"):
            admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.execute("CREATE ROLE ml_reviewers")
        admin.execute("CREATE ROLE product_owners")
    try:
        with connect("tour") as conn:
            statements = [s for s in re.sub(r"--[^\n]*", "", tour).split(";") if s.strip()]
            create, rest = statements[0], statements[1:]
            conn.execute(create)
            conn.execute(setup)
            conn.execute("GRANT EXECUTE ON FUNCTION retrain.approve(text, text, text, text) "
                         "TO ml_reviewers, product_owners")
            for statement in rest:
                conn.execute(statement)
            assert scalar(conn, "SELECT production_version FROM retrain.deployments WHERE model = 'churn'") == "v1"
            assert scalar(conn, "SELECT ok FROM retrain.verify_log()") is True
    finally:
        with connect("postgres") as admin:
            admin.execute("DROP DATABASE IF EXISTS tour")
            for role in ("tour_alice", "tour_bob", "ml_reviewers", "product_owners"):
                admin.execute(f"DROP ROLE IF EXISTS {role}")


def heading_anchors(path):
    """The anchors GitHub makes of a Markdown file's headings."""
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^#+ (.*)", line)
            if m:
                out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


def test_doc_links_resolve():
    """Every relative link of README.md and docs/*.md names a file that
    exists and, with #anchor, a heading of it."""
    top = os.path.normpath(os.path.join(os.path.dirname(REFERENCE), ".."))
    files = [os.path.join(top, f) for f in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")] + [
        os.path.join(top, "docs", f)
                                                for f in sorted(os.listdir(os.path.join(top, "docs")))
                                                if f.endswith(".md")]
    broken = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for m in re.finditer(r"\]\(([^)#\s]*)(#[^)\s]*)?\)", text):
            target, anchor = m.group(1), m.group(2)
            if target.startswith(("http://", "https://")):
                continue
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), target)) if target else path
            if not os.path.exists(resolved):
                broken.append(f"{os.path.relpath(path, top)}: {target}")
            elif anchor and resolved.endswith(".md") and anchor[1:] not in heading_anchors(resolved):
                broken.append(f"{os.path.relpath(path, top)}: {target}{anchor}")
    assert not broken, broken


def test_architecture_names_every_file():
    """docs/architecture.md maps the tree: every file of src/, sql/install/
    and test/ is named in it, and every path it names exists."""
    top = os.path.normpath(os.path.join(os.path.dirname(REFERENCE), ".."))
    text = open(os.path.join(top, "docs", "architecture.md"), encoding="utf-8").read()
    named = set(re.findall(r"`((?:src|sql|test|docs)/[\w./*-]+|[\w-]+\.(?:c|h|sql|py|sh|awk|conf))`", text))
    missing = []
    for folder, prefix in (("src", ""), (os.path.join("sql", "install"), ""), ("test", "test/")):
        for f in sorted(os.listdir(os.path.join(top, folder))):
            if f.startswith((".", "__")) or not f.endswith((".c", ".h", ".sql", ".py", ".sh", ".conf")):
                continue  # build products, caches
            if f not in named and prefix + f not in named and f"{folder}/{f}" not in named:
                missing.append(f"{folder}/{f}")
    assert not missing, f"not in docs/architecture.md: {missing}"
    gone = [p for p in named if "/" in p and "*" not in p and "<" not in p
            and not os.path.exists(os.path.join(top, p))]
    assert not gone, f"docs/architecture.md names what does not exist: {gone}"


def test_the_parser_catches_a_missing_function():
    """The checks above can fail: drop one line and the set differs."""
    text = read().replace("retrain.version() → text\n", "")
    sigs = {s for _, s in documented_signatures(text)}
    assert "retrain.version()" not in sigs
    assert "retrain.version()" in {s for _, s in documented_signatures(read())}


if __name__ == "__main__":
    run_suite(globals())
