-- Routing for applications (src/route.c): bucket(), route() and
-- route_detail(), and the trigger on retrain.deployments that keeps every
-- backend's route cache current and notifies listening applications.

-- @replace

CREATE OR REPLACE FUNCTION @extschema@._deployments_changed()
    RETURNS trigger LANGUAGE C
    AS 'MODULE_PATHNAME', 'retrain_deployments_changed';
COMMENT ON FUNCTION @extschema@._deployments_changed() IS
    'Invalidates every backend''s route cache and sends NOTIFY retrain_deployments at commit (internal)';
CREATE OR REPLACE TRIGGER deployments_changed
    AFTER INSERT OR UPDATE OR DELETE ON @extschema@.deployments
    FOR EACH ROW EXECUTE FUNCTION @extschema@._deployments_changed();
COMMENT ON TRIGGER deployments_changed ON @extschema@.deployments IS
    'Keeps route() caches current and notifies listening applications';

-- Routing for applications.
CREATE OR REPLACE FUNCTION @extschema@.bucket(model text, unit_key text)
    RETURNS integer LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'retrain_bucket';
COMMENT ON FUNCTION @extschema@.bucket(text, text) IS
    'The routing bucket 0..9999 of a unit: murmur3_x86_32(utf8(model || '':'' || unit_key), seed 0) mod 10000';

CREATE OR REPLACE FUNCTION @extschema@.route(model text, unit_key text)
    RETURNS text LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'retrain_route';
COMMENT ON FUNCTION @extschema@.route(text, text) IS
    'The model version to serve this unit (canary when its bucket < canary_percent * 100); NULL: serve no model';

CREATE OR REPLACE FUNCTION @extschema@.route_detail(model text, unit_key text,
                                         OUT version text, OUT arm text, OUT shadow_version text,
                                         OUT bucket integer)
    RETURNS record LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'retrain_route_detail';
COMMENT ON FUNCTION @extschema@.route_detail(text, text) IS
    'route() with the arm (production, canary, forced, fallback), the shadow version to score alongside, and the bucket';
