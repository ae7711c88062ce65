--
-- Richer gates (issue 14, item 3): a ratio of production's metric, and
-- "any" of several gates; each threshold on both sides.
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;

SELECT retrain.register_model('gt', 'binary_classification');
SELECT retrain.register_version('gt', v, 's3://m/' || v, encode(sha256(v::bytea), 'hex'), m::jsonb)
  FROM (VALUES ('v1', '{"auc": 0.80, "conversion": 0.100}'),
               ('v2', '{"auc": 0.816, "conversion": 0.100}'),
               ('v3', '{"auc": 0.8159, "conversion": 0.105}'),
               ('v4', '{"auc": 0.8159, "conversion": 0.1049}')) x(v, m);
SELECT retrain.promote('gt', 'v1', 'blue_green', override_reason => 'first release');

-- "+2% AUC": at least production x 1.02 = 0.816, in decimal.
SELECT retrain.set_policy('gt', '{"gates": [{"metric": "auc", "op": ">=", "ratio": 1.02}]}') IS NOT NULL AS set;
SELECT v, gate, required, observed, passed FROM unnest('{v2, v3}'::text[]) v, retrain.evaluate('gt', v);

-- "+2% AUC or +5% conversion": one alternative is enough; each is shown,
-- and which one passed.
SELECT retrain.set_policy('gt', '{"gates": [{"any": [{"metric": "auc", "op": ">=", "ratio": 1.02},
                                                     {"metric": "conversion", "op": ">=", "ratio": 1.05}]}]}') IS NOT NULL AS set;
SELECT v, gate, required, observed, passed FROM unnest('{v2, v3, v4}'::text[]) v, retrain.evaluate('gt', v);
SELECT details->'passed' AS passed FROM retrain.log WHERE model = 'gt' AND event = 'evaluated' ORDER BY id DESC LIMIT 3;
-- promotion decides on the "any" rows only
SELECT retrain.promote('gt', 'v3', 'canary');
SELECT retrain.rollback('gt', 'test over');
SELECT retrain.promote('gt', 'v4', 'canary');

-- One more level of "any" is allowed, not two; a ratio must be above 0;
-- value, relative and ratio are one of a kind.
SELECT retrain.set_policy('gt', '{"gates": [{"any": [{"metric": "auc", "op": ">=", "value": 0.9},
                                                     {"any": [{"metric": "conversion", "op": ">=", "ratio": 1.05},
                                                              {"metric": "auc", "op": ">=", "relative": 0.1}]}]}]}') IS NOT NULL AS set;
SELECT gate, passed FROM retrain.evaluate('gt', 'v4');
SELECT gate, passed FROM retrain.evaluate('gt', 'v3');
SELECT retrain.set_policy('gt', '{"gates": [{"any": [{"any": [{"any": [{"metric": "auc", "op": ">=", "value": 0.9}]}]}]}]}');
SELECT retrain.set_policy('gt', '{"gates": [{"metric": "auc", "op": ">=", "ratio": 0}]}');
SELECT retrain.set_policy('gt', '{"gates": [{"metric": "auc", "op": ">=", "ratio": 1.02, "value": 0.8}]}');
SELECT retrain.set_policy('gt', '{"gates": [{"any": []}]}');
