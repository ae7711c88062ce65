-- Retraining triggers: check() evaluates them (one function per trigger
-- kind over the window's figures, and one for eligibility); run_checks()
-- acts on them for every model.

-- @once

-- The last occurrence of each model's schedule that made a request, so that
-- an occurrence fires once however often checks run.
CREATE TABLE @extschema@.trigger_state (
    model           text NOT NULL REFERENCES @extschema@.models (name),
    trigger         text NOT NULL,
    last_occurrence timestamptz NOT NULL,
    PRIMARY KEY (model, trigger)
);
COMMENT ON TABLE @extschema@.trigger_state IS 'Per model and trigger, the last schedule occurrence that fired (internal state of run_checks)';
GRANT SELECT ON @extschema@.trigger_state TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.trigger_state', '');

-- @replace

-- The latest occurrence of a schedule at or before at (UTC), or NULL.
CREATE OR REPLACE FUNCTION @extschema@.schedule_occurrence(schedule jsonb, at timestamptz, last_training timestamptz DEFAULT NULL)
    RETURNS timestamptz
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamp := at AT TIME ZONE 'UTC';
    tod interval;
    dow integer := array_position(ARRAY['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'],
                                  schedule->>'weekday') - 1;
    month_start timestamp;
    candidate timestamp;
    i integer;
    n float8;
BEGIN
    IF schedule IS NULL OR at IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT @extschema@._valid_schedule(schedule) THEN
        RAISE EXCEPTION 'retrain.schedule_occurrence: invalid schedule %', schedule
            USING ERRCODE = 'invalid_parameter_value', HINT = @extschema@._schedule_hint();
    END IF;
    tod := coalesce((schedule->>'at')::time, '00:00')::interval;
    IF schedule ? 'interval' THEN
        -- every interval since the last training: estimate how many fit
        -- (months count as 30 days in the estimate), then step to the
        -- exact last one, which calendar arithmetic decides
        IF last_training IS NULL OR last_training + (schedule->>'interval')::interval > at THEN
            RETURN NULL;
        END IF;
        n := greatest(1, floor(extract(epoch FROM at - last_training)
                               / extract(epoch FROM (schedule->>'interval')::interval)));
        WHILE n > 1 AND last_training + n * (schedule->>'interval')::interval > at LOOP
            n := n - 1;
        END LOOP;
        WHILE last_training + (n + 1) * (schedule->>'interval')::interval <= at LOOP
            n := n + 1;
        END LOOP;
        RETURN last_training + n * (schedule->>'interval')::interval;
    END IF;
    IF schedule->>'every' = 'week' THEN
        candidate := date_trunc('day', t) - ((extract(dow FROM t)::integer - dow + 7) % 7) * interval '1 day' + tod;
        IF candidate > t THEN
            candidate := candidate - interval '7 days';
        END IF;
        RETURN candidate AT TIME ZONE 'UTC';
    END IF;
    -- every month: this month's occurrence, else the one before (a fifth
    -- weekday is missing in some months: look further back)
    month_start := date_trunc('month', t);
    FOR i IN 0 .. 12 LOOP
        IF schedule ? 'day' THEN
            candidate := month_start + ((schedule->>'day')::numeric::integer - 1) * interval '1 day' + tod;
        ELSE
            candidate := month_start + ((dow - extract(dow FROM month_start)::integer + 7) % 7) * interval '1 day'
                         + ((schedule->>'nth')::numeric::integer - 1) * interval '7 days' + tod;
            IF date_trunc('month', candidate) <> month_start THEN
                candidate := NULL;
            END IF;
        END IF;
        IF candidate IS NOT NULL AND candidate <= t THEN
            RETURN candidate AT TIME ZONE 'UTC';
        END IF;
        month_start := month_start - interval '1 month';
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.schedule_occurrence(jsonb, timestamptz, timestamptz) IS
    'The latest occurrence at or before at of a schedule trigger (weekly, monthly on a day or the nth weekday, or an interval since the last training); times are UTC';

CREATE OR REPLACE FUNCTION @extschema@.check(model text, at timestamptz DEFAULT now())
    RETURNS TABLE (trigger text, fired boolean, observed pg_catalog.float8, threshold pg_catalog.float8,
                   eligible boolean, detail jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- one query per model, of moderate size: compiling it costs more than it saves
    SET jit = off
AS $$
DECLARE
    -- "check" is a reserved word: the model argument is named $1 below
    m @extschema@.models;
    pol jsonb;
    trg jsonb;
    d @extschema@.deployments;
    prod @extschema@.model_versions;
    last_training timestamptz;
    new_labels bigint := 0;
    training_rows bigint;
    is_eligible boolean;
    min_labels numeric;
    windows interval[];
    max_window interval;
    select_list text[] := '{}';
    b @extschema@.baselines;
    feats @extschema@.baselines[] := '{}';
    r jsonb;
    psis float8[] := '{}';
    psi float8;
    counts jsonb;
    actual float8[];
    metric text;
    higher_better boolean;
    registered float8;
    value float8;
    drop_ float8;
    occurrence timestamptz;
    last_fired timestamptz;
    latest_features text[];
    idx integer;
    eligibility jsonb;
    failed jsonb := '{}';
    owner_check record;
    outcome record;
    src text;
    wide text[];
    fexpr text;
    in_flight jsonb;
    by_feature jsonb := '{}';
BEGIN
    IF $1 IS NULL OR at IS NULL THEN
        RAISE EXCEPTION 'retrain.check: model and at must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO m FROM @extschema@.models mm WHERE mm.name = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retrain.check: unknown model "%"', model USING ERRCODE = 'undefined_object';
    END IF;
    pol := @extschema@.effective_policy(model);
    trg := coalesce(pol->'triggers', '{}');
    SELECT * INTO d FROM @extschema@.deployments dd WHERE dd.model = $1;
    IF d.production_version IS NOT NULL THEN
        SELECT * INTO prod FROM @extschema@.model_versions mv
         WHERE mv.model = $1 AND mv.version = d.production_version;
        last_training := coalesce(upper(prod.data_range), prod.registered_at);
    END IF;

    -- Labels that arrived since the last training: data growth and
    -- eligibility.  EXECUTE plans it for this model's values each time: the
    -- generic plan PL/pgSQL settles on after five calls hash-joins every
    -- model's outcomes, three times slower on a busy table.
    src := @extschema@._source_from('check', m);
    wide := @extschema@._source_features(m);
    IF last_training IS NOT NULL AND m.source IS NOT NULL THEN
        new_labels := @extschema@._read(m, format('SELECT to_jsonb(count(*)) FROM %s '
                                                  'WHERE o.prediction_id IS NOT NULL AND o.observed_at > %L AND o.observed_at <= %L',
                                                  src, last_training, at));
    ELSIF last_training IS NOT NULL THEN
        EXECUTE 'SELECT count(*) FROM @extschema@.outcomes o '
                'JOIN @extschema@.predictions p ON p.id = o.prediction_id '
                'WHERE p.model = $1 AND o.observed_at > $2 AND o.observed_at <= $3'
           INTO new_labels USING $1, last_training, at;
    END IF;
    min_labels := coalesce((pol->'eligibility'->>'min_new_labels')::numeric, 0);
    -- the owner's named checks, each run with the owner's privileges
    FOR owner_check IN SELECT e.key, e.value #>> '{}' AS query
                         FROM jsonb_each(coalesce(pol->'eligibility'->'checks', '{}')) e ORDER BY e.key LOOP
        SELECT * INTO outcome FROM @extschema@._run_owner_check(m.owner, owner_check.query);
        IF outcome.result IS NOT TRUE THEN
            failed := failed || jsonb_build_object(owner_check.key,
                                                   coalesce(outcome.error,
                                                            format('returned %s', coalesce(outcome.result::text, 'NULL or no row'))));
        END IF;
    END LOOP;
    -- The answer to the last request may be on its way: a version trained
    -- for it and not yet released or discarded.  Until it is (or the
    -- cooldown passes), the production version's drift or metric drop that
    -- made the request would only make the same request again.
    SELECT jsonb_build_object('request', q.id, 'version', q.version, 'stage', mv.stage,
                              'until', q.finished_at + (pol->'requests'->>'cooldown')::interval)
      INTO in_flight
      FROM @extschema@.requests q
      JOIN @extschema@.model_versions mv ON mv.model = q.model AND mv.version = q.version
     WHERE q.model = $1 AND q.status = 'done' AND q.finished_at <= at
       AND q.finished_at > at - (pol->'requests'->>'cooldown')::interval
       AND mv.stage IN ('registered', 'shadow', 'canary')
     ORDER BY q.finished_at DESC LIMIT 1;
    is_eligible := new_labels >= min_labels AND failed = '{}' AND in_flight IS NULL;
    eligibility := jsonb_build_object('eligibility',
                                      jsonb_build_object('new_labels', new_labels, 'min_new_labels', min_labels,
                                                         'failed_checks', failed, 'in_flight', in_flight));

    -- One scan of the production version's recent predictions serves
    -- drift, performance and confidence, each with its own window.
    IF prod.version IS NOT NULL AND trg ?| ARRAY['drift', 'performance', 'confidence'] THEN
        select_list := select_list || 'to_jsonb(count(*))'::text;
        IF trg ? 'confidence' THEN
            select_list := select_list || format(
                'to_jsonb(avg(greatest(p.score, 1 - p.score)) FILTER (WHERE p.predicted_at >= %L))',
                at - coalesce(trg->'confidence'->>'window', '7 days')::interval);
        END IF;
        IF trg ? 'performance' THEN
            metric := trg->'performance'->>'metric';
            select_list := select_list
                || format('to_jsonb(count(o.prediction_id) FILTER (WHERE p.predicted_at >= %L))',
                          at - coalesce(trg->'performance'->>'window', '7 days')::interval)
                || format('to_jsonb(%s FILTER (WHERE p.predicted_at >= %L))',
                          CASE WHEN metric IN ('f1', 'precision', 'recall', 'accuracy')
                                   THEN format('@extschema@.%I(p.score, o.label, %s)', metric,
                                               coalesce(trg->'performance'->>'threshold', '0.5'))
                               WHEN metric IN ('auc', 'brier', 'log_loss') THEN format('@extschema@.%I(p.score, o.label)', metric)
                               ELSE format('@extschema@.%I(p.score, o.actual)', metric) END,
                          at - coalesce(trg->'performance'->>'window', '7 days')::interval);
        END IF;
        IF trg ? 'drift' THEN
            FOR b IN SELECT * FROM @extschema@.baselines bl
                      WHERE bl.model = $1 AND bl.version = prod.version ORDER BY bl.feature LOOP
                feats := feats || b;
                -- a feature the wide source no longer has counts as missing
                fexpr := CASE WHEN wide IS NULL THEN format('(p.features->>%L)', b.feature)
                              WHEN b.feature = ANY (wide) THEN format('(p.src).%I::text', b.feature)
                              ELSE 'NULL::text' END;
                select_list := select_list || CASE WHEN b.kind = 'numeric' THEN
                    format('to_jsonb(@extschema@.histogram_missing(%s::float8, %L::float8[]) FILTER (WHERE p.predicted_at >= %L))',
                           fexpr, coalesce(b.edges, '{}'),
                           at - coalesce(trg->'drift'->>'window', '7 days')::interval)
                  ELSE
                    format('to_jsonb(@extschema@.category_counts(%s) FILTER (WHERE p.predicted_at >= %L))',
                           fexpr, at - coalesce(trg->'drift'->>'window', '7 days')::interval)
                  END;
            END LOOP;
        END IF;
        SELECT max(w) INTO max_window FROM unnest(ARRAY[
            CASE WHEN trg ? 'confidence' THEN coalesce(trg->'confidence'->>'window', '7 days')::interval END,
            CASE WHEN trg ? 'performance' THEN coalesce(trg->'performance'->>'window', '7 days')::interval END,
            CASE WHEN trg ? 'drift' THEN coalesce(trg->'drift'->>'window', '7 days')::interval END]) w;
        r := @extschema@._read(m, format('SELECT to_jsonb(ARRAY[%s]) FROM %s '
                                         'WHERE p.model = %L AND p.version = %L AND p.predicted_at >= %L AND p.predicted_at < %L',
                                         array_to_string(select_list, ', '), src, model, prod.version, at - max_window, at));
    END IF;
    idx := 1;

    IF trg ? 'confidence' THEN
        trigger := 'confidence';
        observed := (r->>idx)::float8;
        threshold := (trg->'confidence'->>'min')::float8;
        fired := coalesce(observed < threshold, false);
        eligible := is_eligible;
        detail := jsonb_build_object('window', coalesce(trg->'confidence'->>'window', '7 days'), 'predictions', r->0);
        idx := idx + 1;
        detail := coalesce(detail, '{}') || eligibility;
        RETURN NEXT;
    END IF;

    IF trg ? 'performance' THEN
        trigger := 'performance';
        metric := trg->'performance'->>'metric';
        higher_better := metric IN ('auc', 'f1', 'precision', 'recall', 'accuracy');
        registered := (prod.metrics->>metric)::float8;
        value := (r->>(idx + 1))::float8;
        drop_ := CASE WHEN higher_better THEN registered - value ELSE value - registered END;
        observed := drop_;
        threshold := (trg->'performance'->>'max_drop')::float8;
        fired := coalesce((r->>idx)::numeric, 0) >= coalesce((trg->'performance'->>'min_labels')::numeric, 100)
                 AND (coalesce(drop_ > (trg->'performance'->>'max_drop')::float8, false)
                      OR coalesce(drop_ / nullif(abs(registered), 0) > (trg->'performance'->>'max_relative_drop')::float8, false));
        eligible := is_eligible;
        detail := jsonb_build_object('metric', metric, 'value', value, 'registered', registered,
                                     'relative_drop', drop_ / nullif(abs(registered), 0),
                                     'max_relative_drop', trg->'performance'->'max_relative_drop',
                                     'labelled', r->idx, 'min_labels', coalesce(trg->'performance'->'min_labels', '100'));
        idx := idx + 2;
        detail := coalesce(detail, '{}') || eligibility;
        RETURN NEXT;
    END IF;

    IF trg ? 'drift' THEN
        FOR i IN 1 .. cardinality(feats) LOOP
            b := feats[i];
            counts := r->idx;
            idx := idx + 1;
            psi := NULL;
            IF b.kind = 'numeric' AND jsonb_typeof(counts) = 'array' AND b.expected IS NOT NULL THEN
                actual := ARRAY(SELECT c::float8 FROM jsonb_array_elements_text(counts) WITH ORDINALITY AS e(c, o) ORDER BY o);
                actual := actual[1:cardinality(actual) - 1];
                IF (SELECT sum(c) FROM unnest(actual) c) > 0 THEN
                    psi := @extschema@.psi(b.expected, actual);
                END IF;
            ELSIF b.kind = 'categorical' AND jsonb_typeof(counts) = 'object' AND b.categories IS NOT NULL THEN
                psi := @extschema@.psi(b.categories, counts);
            END IF;
            IF psi IS NOT NULL THEN
                psis := psis || psi;
                by_feature := by_feature || jsonb_build_object(b.feature, psi);
            END IF;
        END LOOP;
        trigger := 'drift';
        threshold := coalesce((trg->'drift'->>'psi')::float8, 0.25);
        observed := CASE coalesce(trg->'drift'->>'aggregate', 'max')
                        WHEN 'max' THEN (SELECT max(x) FROM unnest(psis) x)
                        WHEN 'mean' THEN (SELECT avg(x) FROM unnest(psis) x)
                        ELSE (SELECT avg((x > threshold)::integer) FROM unnest(psis) x) END;
        fired := CASE coalesce(trg->'drift'->>'aggregate', 'max')
                     WHEN 'share' THEN coalesce(observed >= coalesce((trg->'drift'->>'share')::float8, 0.5), false)
                     ELSE coalesce(observed > threshold, false) END;
        eligible := is_eligible;
        detail := jsonb_build_object('aggregate', coalesce(trg->'drift'->>'aggregate', 'max'), 'features', cardinality(psis),
                                     'psi', to_jsonb(psis), 'by_feature', by_feature,
                                     'window', coalesce(trg->'drift'->>'window', '7 days'));
        detail := coalesce(detail, '{}') || eligibility;
        RETURN NEXT;
    END IF;

    IF trg ? 'data_growth' THEN
        SELECT max(bl.row_count) INTO training_rows FROM @extschema@.baselines bl
         WHERE bl.model = $1 AND bl.version = prod.version;
        trigger := 'data_growth';
        observed := new_labels;
        threshold := least((trg->'data_growth'->>'count')::float8,
                           (trg->'data_growth'->>'share')::float8 * training_rows);
        fired := last_training IS NOT NULL AND coalesce(observed >= threshold, false);
        eligible := is_eligible;
        detail := jsonb_build_object('new_labels', new_labels, 'since', last_training, 'training_rows', training_rows);
        detail := coalesce(detail, '{}') || eligibility;
        RETURN NEXT;
    END IF;

    IF trg ? 'schedule' THEN
        occurrence := @extschema@.schedule_occurrence(trg->'schedule', at, last_training);
        SELECT ts.last_occurrence INTO last_fired FROM @extschema@.trigger_state ts
         WHERE ts.model = $1 AND ts.trigger = 'schedule';
        trigger := 'schedule';
        observed := NULL;
        threshold := NULL;
        fired := occurrence IS NOT NULL AND occurrence >= m.created_at
                 AND occurrence > coalesce(last_fired, '-infinity');
        eligible := is_eligible;
        detail := jsonb_build_object('occurrence', occurrence, 'last_fired', last_fired);
        detail := coalesce(detail, '{}') || eligibility;
        RETURN NEXT;
    END IF;

    IF trg ? 'feature_change' THEN
        IF wide IS NOT NULL THEN
            -- the wide source's columns are its features
            latest_features := ARRAY(SELECT f FROM unnest(wide) f ORDER BY 1);
        ELSE
            -- the features of the latest prediction served
            latest_features := ARRAY(SELECT jsonb_array_elements_text(@extschema@._read(m, format(
                'SELECT to_jsonb(ARRAY(SELECT jsonb_object_keys(p.features) ORDER BY 1)) FROM %s '
                'WHERE p.model = %L AND p.version = %L AND p.predicted_at < %L AND p.features IS NOT NULL '
                'ORDER BY p.predicted_at DESC LIMIT 1', src, model, prod.version, at))));
            IF cardinality(latest_features) = 0 THEN
                latest_features := NULL;
            END IF;
        END IF;
        trigger := 'feature_change';
        observed := NULL;
        threshold := NULL;
        fired := prod.features IS NOT NULL AND latest_features IS NOT NULL
                 AND NOT (prod.features @> latest_features AND latest_features @> prod.features);
        eligible := is_eligible;
        detail := jsonb_build_object('trained_on', prod.features, 'served',
                                     latest_features,
                                     'added', (SELECT jsonb_agg(f) FROM unnest(latest_features) f WHERE NOT f = ANY (prod.features)),
                                     'dropped', (SELECT jsonb_agg(f) FROM unnest(prod.features) f WHERE NOT f = ANY (latest_features)));
        detail := coalesce(detail, '{}') || eligibility;
        RETURN NEXT;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.check(text, timestamptz) IS
    'Evaluate a model''s retraining triggers at a time without changing anything: per trigger, whether it fired, what was observed against what threshold, and whether the model is eligible (min_new_labels and the owner''s named checks)';

CREATE OR REPLACE FUNCTION @extschema@.run_checks()
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m text;
    c record;
    reasons text[];
    fired_triggers text[];
    schedule_occurrence_ timestamptz;
    request_id bigint;
    created boolean;
    made integer := 0;
BEGIN
    FOR m IN SELECT name FROM @extschema@.models ORDER BY name LOOP
        BEGIN
            reasons := '{}';
            fired_triggers := '{}';
            schedule_occurrence_ := NULL;
            request_id := NULL;
            FOR c IN SELECT * FROM @extschema@.check(m, now()) LOOP
                IF c.fired AND c.eligible THEN
                    fired_triggers := fired_triggers || c.trigger;
                    reasons := reasons || format('%s: %s', c.trigger,
                        CASE WHEN c.observed IS NOT NULL
                             THEN format('%s against %s', round(c.observed::numeric, 4), round(c.threshold::numeric, 4))
                             ELSE coalesce(c.detail->>'occurrence', c.detail::text) END);
                    IF c.trigger = 'schedule' THEN
                        schedule_occurrence_ := (c.detail->>'occurrence')::timestamptz;
                    END IF;
                END IF;
            END LOOP;
            IF cardinality(reasons) > 0 THEN
                SELECT q.id, q.created INTO request_id, created
                  FROM @extschema@._request(m, jsonb_build_object('trigger', array_to_string(fired_triggers, ', '),
                                                                  'reason', array_to_string(reasons, '; '),
                                                                  'by', @extschema@._actor())) q;
                IF created THEN
                    made := made + 1;
                END IF;
                IF schedule_occurrence_ IS NOT NULL THEN
                    INSERT INTO @extschema@.trigger_state VALUES (m, 'schedule', schedule_occurrence_)
                    ON CONFLICT (model, trigger) DO UPDATE SET last_occurrence = excluded.last_occurrence;
                END IF;
            END IF;
            PERFORM @extschema@._log(m, NULL, 'checked',
                                     jsonb_build_object('fired', fired_triggers, 'request', request_id));
        EXCEPTION WHEN OTHERS THEN
            -- one model's failure is logged and skipped; the others go on
            PERFORM @extschema@._log(m, NULL, 'check_failed', jsonb_build_object('sqlstate', SQLSTATE, 'message', SQLERRM));
        END;
    END LOOP;
    RETURN made;
END
$$;
COMMENT ON FUNCTION @extschema@.run_checks() IS
    'Check every model''s triggers now; for fired and eligible ones make (or join) the model''s retrain request; log each decision; returns the number of new requests';
