"""The release metadata agrees with itself, and the Makefile builds out of
tree.

retrain.control's default_version is the version; META.json (PGXN), the
Debian changelog and CHANGELOG.md must name the same one, and META.json's
abstract is the control file's comment.  The package build (test/deb_check.sh)
and the other PostgreSQL versions build from a directory outside the source
tree, which must leave the source tree as it was.
"""

import json
import os
import re
import subprocess
import tempfile

from testlib import run_suite

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
PG_CONFIG = os.path.join(os.environ.get("RETRAIN_PGBIN", "/usr/lib/postgresql/15/bin"), "pg_config")


def read(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as f:
        return f.read()


def control():
    return dict(re.findall(r"^(\w+)\s*=\s*'?(.*?)'?\s*$", read("retrain.control"), flags=re.M))


def test_meta_json_names_the_control_files_version_and_comment():
    meta = json.loads(read("META.json"))
    ctl = control()
    assert meta["version"] == ctl["default_version"], (meta["version"], ctl["default_version"])
    provided = meta["provides"]["retrain"]
    assert provided["version"] == ctl["default_version"], provided
    assert provided["abstract"] == ctl["comment"], (provided["abstract"], ctl["comment"])
    assert os.path.exists(os.path.join(ROOT, provided["file"])), provided["file"]
    assert os.path.exists(os.path.join(ROOT, provided["docfile"])), provided["docfile"]
    assert meta["license"] == "postgresql" and read("LICENSE").startswith("PostgreSQL License")
    assert meta["meta-spec"]["version"] == "1.0.0"
    # semantic versions, as PGXN requires
    for v in (meta["version"], meta["prereqs"]["runtime"]["requires"]["PostgreSQL"]):
        assert re.fullmatch(r"\d+\.\d+\.\d+", v), v


def test_debian_changelog_and_changelog_name_the_version():
    version = control()["default_version"]
    first = read("debian", "changelog").splitlines()[0]
    assert re.match(rf"^retrain \({re.escape(version)}-\d+\) ", first), first
    assert re.search(rf"^## {re.escape(version)}\b", read("CHANGELOG.md"), flags=re.M), version
    # every released script has its section too
    for name in os.listdir(os.path.join(ROOT, "sql", "released")):
        released = re.fullmatch(r"retrain--([0-9.]+)\.sql", name)
        if released:
            assert re.search(rf"^## {re.escape(released.group(1))}\b", read("CHANGELOG.md"), flags=re.M), name


def test_debian_control_is_generated_from_its_template():
    # pg_buildext updatecontrol writes debian/control from control.in for the
    # versions in debian/pgversions; a stale one fails Debian's build.
    template = read("debian", "control.in")
    generated = read("debian", "control")
    assert "postgresql-PGVERSION-retrain" in template
    assert generated == template.replace("PGVERSION", "15"), "run: pg_buildext updatecontrol"
    assert read("debian", "pgversions").split() == ["15+"]
    assert read("debian", "source", "format").strip() == "3.0 (quilt)"
    assert "--with pgxs" in read("debian", "rules")


def test_an_out_of_tree_build_leaves_the_source_tree_alone():
    before = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--ignored"],
                            capture_output=True, text=True)
    with tempfile.TemporaryDirectory(dir=os.environ.get("RETRAIN_TMP")) as build:
        run = subprocess.run(["make", "-s", "-f", os.path.join(ROOT, "Makefile"), f"PG_CONFIG={PG_CONFIG}",
                              "all"], cwd=build, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        version = control()["default_version"]
        for built in ("retrain.so", f"sql/retrain--{version}.sql", f"sql/retrain--0.1.0--{version}.sql",
                      "src/retrain.o"):
            assert os.path.exists(os.path.join(build, built)), built
        # the objects are this build's, compiled here, not found in the tree
        assert os.path.getsize(os.path.join(build, "src", "rollup.o")) > 0
        staged = os.path.join(build, "stage")
        run = subprocess.run(["make", "-s", "-f", os.path.join(ROOT, "Makefile"), f"PG_CONFIG={PG_CONFIG}",
                              f"DESTDIR={staged}", "install"], cwd=build, capture_output=True, text=True,
                             timeout=600)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        docdir = subprocess.run([PG_CONFIG, "--docdir"], capture_output=True, text=True).stdout.strip()
        docs = os.listdir(staged + docdir + "/extension/retrain")
        assert {"README.md", "CHANGELOG.md", "LICENSE", "operations.md", "monitoring.md"} <= set(docs), docs
    if before.returncode == 0:
        after = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--ignored"],
                               capture_output=True, text=True)
        assert after.stdout == before.stdout, (before.stdout, after.stdout)


if __name__ == "__main__":
    run_suite(globals())
