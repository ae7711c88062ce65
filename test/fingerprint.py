"""A catalog fingerprint of the installed retrain extension.

fingerprint(conn) describes every member of the extension as lines of text,
sorted, that do not depend on OIDs or on the order objects were created in:
for each function its full definition (pg_get_functiondef: arguments,
result, language, volatility, strictness, security, settings, body), for each
aggregate its support functions and options, for each table its columns in
order (type, NOT NULL, default, identity), constraints, indexes, triggers,
options, for views their text, for types their attributes, for operators
their functions; and for every object its owner, its ACL, its initial
privileges as pg_dump sees them, and its comment.  The extension's config
tables (pg_extension_config_dump) and their conditions close it.

Two databases whose fingerprints are equal hold the same extension, object by
object: that is what the upgrade test asks of a fresh install and an updated
one.  diff() shows what differs, as a unified diff.
"""

import difflib

# Each query yields (object, line) rows for one kind of member.  "m" is the
# set of the extension's members (classid, objid).
MEMBERS = """
    WITH m AS (
        SELECT d.classid, d.objid
          FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
         WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = {ext}
    )
"""

QUERIES = [
    # every member: what it is, owner-independent identity
    """SELECT pg_describe_object(m.classid, m.objid, 0), 'member' FROM m""",
    # functions and procedures: their whole definition
    """SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid)
         FROM m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
        WHERE p.prokind IN ('f', 'p')""",
    # aggregates: support functions and options
    """SELECT p.oid::regprocedure::text,
              format('aggregate kind=%s transfn=%s transtype=%s finalfn=%s finalextra=%s finalmodify=%s '
                     'combinefn=%s serialfn=%s deserialfn=%s initval=%s sortop=%s parallel=%s strict=%s',
                     a.aggkind, a.aggtransfn::regprocedure, a.aggtranstype::regtype,
                     nullif(a.aggfinalfn, 0)::regprocedure, a.aggfinalextra, a.aggfinalmodify,
                     nullif(a.aggcombinefn, 0)::regprocedure, nullif(a.aggserialfn, 0)::regprocedure,
                     nullif(a.aggdeserialfn, 0)::regprocedure, a.agginitval, nullif(a.aggsortop, 0)::regoperator,
                     p.proparallel, p.proisstrict)
         FROM m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
         JOIN pg_aggregate a ON a.aggfnoid = p.oid""",
    # owner, ACL and comment of functions and aggregates
    """SELECT p.oid::regprocedure::text,
              format('owner=%s acl=%s comment=%s', p.proowner::regrole, p.proacl,
                     obj_description(p.oid, 'pg_proc'))
         FROM m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid""",
    # relations: kind, owner, ACL, options, comment
    """SELECT c.oid::regclass::text,
              format('relation kind=%s persistence=%s owner=%s acl=%s options=%s rowsecurity=%s comment=%s',
                     c.relkind, c.relpersistence, c.relowner::regrole, c.relacl, c.reloptions,
                     c.relrowsecurity, obj_description(c.oid, 'pg_class'))
         FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid""",
    # columns, in order, of tables, views and composite types
    """SELECT c.oid::regclass::text,
              format('column %s %s %s type=%s notnull=%s default=%s identity=%s generated=%s collation=%s '
                     'acl=%s comment=%s',
                     lpad(rank() OVER (PARTITION BY c.oid ORDER BY a.attnum)::text, 3, '0'), a.attname,
                     CASE WHEN c.relkind = 'c' THEN 'attribute' ELSE '' END,
                     format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
                     a.attidentity, a.attgenerated, nullif(a.attcollation, 0)::regcollation, a.attacl,
                     col_description(c.oid, a.attnum))
         FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum""",
    # constraints of tables
    """SELECT c.oid::regclass::text,
              format('constraint %s %s deferrable=%s deferred=%s comment=%s', k.conname,
                     pg_get_constraintdef(k.oid), k.condeferrable, k.condeferred,
                     obj_description(k.oid, 'pg_constraint'))
         FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
         JOIN pg_constraint k ON k.conrelid = c.oid""",
    # indexes of tables
    """SELECT c.oid::regclass::text,
              format('index %s comment=%s', pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class'))
         FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
         JOIN pg_index i ON i.indrelid = c.oid""",
    # triggers of tables
    """SELECT c.oid::regclass::text,
              format('trigger %s enabled=%s comment=%s', pg_get_triggerdef(t.oid), t.tgenabled,
                     obj_description(t.oid, 'pg_trigger'))
         FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
         JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal""",
    # row-level security policies
    """SELECT c.oid::regclass::text,
              format('policy %s cmd=%s permissive=%s roles=%s using=%s check=%s', p.polname, p.polcmd,
                     p.polpermissive, p.polroles::regrole[], pg_get_expr(p.polqual, p.polrelid),
                     pg_get_expr(p.polwithcheck, p.polrelid))
         FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
         JOIN pg_policy p ON p.polrelid = c.oid""",
    # views
    """SELECT c.oid::regclass::text, 'view ' || pg_get_viewdef(c.oid)
         FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
        WHERE c.relkind IN ('v', 'm')""",
    # sequences: their parameters (not their current value)
    """SELECT c.oid::regclass::text,
              format('sequence type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s',
                     s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
         FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
         JOIN pg_sequence s ON s.seqrelid = c.oid""",
    # types
    """SELECT t.oid::regtype::text,
              format('type kind=%s owner=%s acl=%s comment=%s', t.typtype, t.typowner::regrole, t.typacl,
                     obj_description(t.oid, 'pg_type'))
         FROM m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid""",
    # operators
    """SELECT o.oid::regoperator::text,
              format('operator code=%s commutator=%s negator=%s restrict=%s join=%s owner=%s comment=%s',
                     o.oprcode::regprocedure, nullif(o.oprcom, 0)::regoperator, nullif(o.oprnegate, 0)::regoperator,
                     nullif(o.oprrest, 0)::regproc, nullif(o.oprjoin, 0)::regproc, o.oprowner::regrole,
                     obj_description(o.oid, 'pg_operator'))
         FROM m JOIN pg_operator o ON m.classid = 'pg_operator'::regclass AND o.oid = m.objid""",
    # the privileges pg_dump takes as the extension's own (pg_init_privs)
    """SELECT pg_describe_object(ip.classoid, ip.objoid, ip.objsubid),
              format('initial privileges %s %s', ip.privtype, ip.initprivs)
         FROM m JOIN pg_init_privs ip ON ip.classoid = m.classid AND ip.objoid = m.objid""",
]

EXTENSION = """
    SELECT 'extension ' || e.extname,
           format('config %s condition=%s', c.cfg::regclass, c.cond)
      FROM pg_extension e,
           LATERAL unnest(e.extconfig, e.extcondition) AS c(cfg, cond)
     WHERE e.extname = {ext}
    UNION ALL
    SELECT 'schema ' || n.nspname,
           format('schema owner=%s acl=%s comment=%s', n.nspowner::regrole, n.nspacl,
                  obj_description(n.oid, 'pg_namespace'))
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = {ext}
"""


def fingerprint(conn, extension="retrain"):
    """The sorted lines that describe every member of the extension."""
    # the queries hold format()'s %s: no parameters, the name as a literal
    ext = "'" + extension.replace("'", "''") + "'"
    lines = []
    for query in QUERIES:
        for obj, line in conn.execute(MEMBERS.replace("{ext}", ext) + query):
            lines.append(f"{obj}: {line}")
    for obj, line in conn.execute(EXTENSION.replace("{ext}", ext)):
        lines.append(f"{obj}: {line}")
    # a multi-line definition becomes several lines, each prefixed by its object
    out = []
    for line in sorted(lines):
        head, _, rest = line.partition(": ")
        for part in rest.splitlines() or [""]:
            out.append(f"{head}: {part}")
    return out


def diff(expected, actual, expected_name="fresh install", actual_name="updated install"):
    """A unified diff of two fingerprints; empty when they are equal."""
    return "\n".join(difflib.unified_diff(expected, actual, expected_name, actual_name, lineterm="", n=1))
