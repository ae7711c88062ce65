--
-- Drift statistics: quantile_edges, histogram, psi, js_distance,
-- category_counts, ks_2samp.
--

-- quantile_edges interpolates like percentile_cont.
SELECT retrain.quantile_edges(x, 4) AS quartiles,
       (SELECT percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY x)
          FROM generate_series(1, 10) x) AS percentile_cont
  FROM generate_series(1, 10) x;
SELECT retrain.quantile_edges(x) AS deciles FROM generate_series(1, 10) x;
SELECT retrain.quantile_edges(x, 7) = (SELECT array_agg(q ORDER BY k) FROM
         (SELECT k, percentile_cont(k / 7.0) WITHIN GROUP (ORDER BY x) AS q
            FROM generate_series(1, 1000) x, generate_series(1, 6) k GROUP BY k) p) AS equals_percentile_cont
  FROM generate_series(1, 1000) x;
-- Equal quantiles make one edge; NULL and NaN are skipped.
SELECT retrain.quantile_edges(x, 4) AS deduplicated
  FROM (VALUES (1.0), (1.0), (1.0), (1.0), (2.0), (NULL), ('NaN')) v(x);
SELECT retrain.quantile_edges(x, 4) AS one_value FROM (VALUES (7.0)) v(x);
SELECT retrain.quantile_edges(x, 4) AS no_rows FROM (VALUES (7.0)) v(x) WHERE false;
SELECT retrain.quantile_edges(x, NULL) AS null_bins FROM (VALUES (7.0)) v(x);
SELECT retrain.quantile_edges(x, 2) AS with_infinities
  FROM (VALUES ('-Infinity'::float8), (1), (2), ('Infinity')) v(x);
SELECT retrain.quantile_edges(x, 4) FROM (VALUES ('-Infinity'::float8), (1), (2), ('Infinity')) v(x);
SELECT retrain.quantile_edges(x, 1) FROM generate_series(1, 3) x;
SELECT retrain.quantile_edges(x, (x % 2)::int + 2) FROM generate_series(1, 3) x;

-- histogram: a value is in bucket i when exactly i edges are <= it, as
-- width_bucket(value, edges) counts.
SELECT retrain.histogram(x, '{2.5, 5, 7.5}') FROM generate_series(1, 10) x;
SELECT retrain.histogram(x, '{2.5, 5, 7.5}') =
       (SELECT array_agg(coalesce(c, 0) ORDER BY b)
          FROM generate_series(0, 3) b
          LEFT JOIN (SELECT width_bucket(x, '{2.5, 5, 7.5}'::float8[]) AS b, count(*) AS c
                       FROM generate_series(1, 10) x GROUP BY 1) w USING (b)) AS equals_width_bucket
  FROM generate_series(1, 10) x;
-- Many edges take a binary search; the counts are the same.
SELECT retrain.histogram(x, e) =
       (SELECT array_agg(coalesce(c, 0) ORDER BY b)
          FROM generate_series(0, 99) b
          LEFT JOIN (SELECT width_bucket(y, e) AS b, count(*) AS c
                       FROM generate_series(1, 5000) y GROUP BY 1) w USING (b)) AS many_edges_ok
  FROM generate_series(1, 5000) x,
       (SELECT array_agg(k * 50.5 ORDER BY k)::float8[] AS e FROM generate_series(1, 99) k) edges
 GROUP BY e;
SELECT retrain.histogram(x, '{0, 1}') AS outer_buckets
  FROM (VALUES ('-Infinity'::float8), (0), (0.5), (1), ('Infinity'), (NULL), ('NaN')) v(x);
SELECT retrain.histogram(x, '{}') AS one_bucket FROM generate_series(1, 3) x;
SELECT retrain.histogram(x, '{1}') AS no_rows FROM generate_series(1, 3) x WHERE false;
SELECT retrain.histogram(x, NULL) AS null_edges FROM generate_series(1, 3) x;
SELECT retrain.histogram(x, '{2, 1}') FROM generate_series(1, 3) x;
SELECT retrain.histogram(x, '{1, 1}') FROM generate_series(1, 3) x;
SELECT retrain.histogram(x, '{1, NaN}') FROM generate_series(1, 3) x;
SELECT retrain.histogram(x, '{1, NULL}') FROM generate_series(1, 3) x;
SELECT retrain.histogram(x, '{{1}, {2}}') FROM generate_series(1, 3) x;
SELECT retrain.histogram(x, ARRAY[x::float8]) FROM generate_series(1, 3) x;

-- psi of two distributions, counts or proportions, each normalised by its
-- own sum: 0.1 ln 1.5 here.
SELECT retrain.psi('{0.25, 0.25, 0.25, 0.25}'::float8[], '{2, 3, 2, 3}') AS psi,
       0.1 * ln(1.5) AS by_hand;
SELECT retrain.psi('{1, 2, 3}'::float8[], '{10, 20, 30}') AS same_shape;
-- An empty bucket counts epsilon (no renormalising): 2 (1 - eps) ln(1 / eps).
SELECT retrain.psi('{1, 0}'::float8[], '{0, 1}') AS disjoint, 2 * (1 - 0.0001) * ln(10000) AS by_hand;
SELECT retrain.psi('{1, 0}'::float8[], '{0, 1}', 0.01) AS other_epsilon;
SELECT retrain.psi(NULL::float8[], '{1}') AS null_input;
SELECT retrain.psi('{1, 2}'::float8[], '{1, 2, 3}');
SELECT retrain.psi('{1, -2}'::float8[], '{1, 2}');
SELECT retrain.psi('{0, 0}'::float8[], '{1, 2}');
SELECT retrain.psi('{1, NaN}'::float8[], '{1, 2}');
SELECT retrain.psi('{1, Infinity}'::float8[], '{1, 2}');
SELECT retrain.psi('{1, NULL}'::float8[], '{1, 2}');
SELECT retrain.psi('{}'::float8[], '{}');
SELECT retrain.psi('{1, 2}'::float8[], '{1, 2}', 0);
SELECT retrain.psi('{1, 2}'::float8[], '{1, 2}', 'NaN');
-- The drift trigger's PSI of a numeric feature from its jsonb figures: the
-- window's counts end with the missing values', which PSI leaves out;
-- nothing counted, no PSI.
SELECT retrain._counts_psi('[0.25, 0.25, 0.25, 0.25]', '[2, 3, 2, 3, 40]')
         = retrain.psi('{0.25, 0.25, 0.25, 0.25}'::float8[], '{2, 3, 2, 3}') AS as_psi,
       retrain._counts_psi('[0.5, 0.5]', '[0, 0, 7]') IS NULL AS none_counted,
       retrain._counts_psi('[]', '[]') IS NULL AS nothing,
       retrain._counts_psi(NULL, '[1, 0]') IS NULL AS null_input;
SELECT retrain._counts_psi('[1, 2]', '[1, 2, 3, 0]');
SELECT retrain._counts_psi('[1, -2]', '[1, 2, 0]');
SELECT retrain._counts_psi('{"a": 1}', '[1, 2, 0]');
SELECT retrain._counts_psi('[1, 2]', '[1, "x", 0]');

-- The psi aggregate bins current values against stored edges and expected
-- proportions: the same as psi of their histogram.
SELECT retrain.psi(x, '{2.5, 5, 7.5}', '{0.4, 0.2, 0.2, 0.2}') AS aggregate,
       retrain.psi('{0.4, 0.2, 0.2, 0.2}'::float8[], retrain.histogram(x, '{2.5, 5, 7.5}')::float8[]) AS via_histogram
  FROM generate_series(1, 10) x;
SELECT retrain.psi(x, '{5}', '{1, 1}') AS no_rows FROM generate_series(1, 10) x WHERE false;
SELECT retrain.psi(x, '{5}', '{1, 1, 1}') FROM generate_series(1, 10) x;
SELECT retrain.psi(x, '{5}', '{0, 0}') FROM generate_series(1, 10) x;

-- Jensen-Shannon distance, as scipy.spatial.distance.jensenshannon.
SELECT retrain.js_distance('{1, 0, 0}', '{0, 1, 0}') AS disjoint, sqrt(ln(2)) AS sqrt_ln_2,
       retrain.js_distance('{1, 0, 0}', '{0, 1, 0}', 2) AS base_2,
       retrain.js_distance('{1, 2, 3}', '{2, 4, 6}') AS same_shape;
SELECT retrain.js_distance('{0.5, 0.5}', '{0.9, 0.1}') AS js;
SELECT retrain.js_distance(NULL, '{1}') AS null_input;
SELECT retrain.js_distance('{1, 2}', '{1}');
SELECT retrain.js_distance('{1, 2}', '{1, 2}', 1);
SELECT retrain.js_distance('{1, 2}', '{1, 2}', -2);
SELECT retrain.js_distance('{0, 0}', '{1, 2}');

-- category_counts: one count per distinct value, NULL skipped.
SELECT retrain.category_counts(c)
  FROM (VALUES ('a'), ('b'), ('a'), (NULL), ('long "quoted" category'), ('ünïcödé')) v(c);
SELECT retrain.category_counts(c) AS no_rows FROM (VALUES ('a')) v(c) WHERE false;
SELECT retrain.category_counts(c) AS only_nulls FROM (VALUES (NULL::text)) v(c);

-- psi over categories: the union of both sides, a missing one counting 0.
SELECT retrain.psi('{"a": 2, "b": 1}'::jsonb, '{"a": 1, "c": 3}') AS categories,
       retrain.psi('{2, 1, 0}'::float8[], '{1, 0, 3}') AS same_as_arrays;
SELECT retrain.psi('{"a": 0.5, "b": 0.5}'::jsonb, '{"b": 10, "a": 10}') AS same_shape;
SELECT retrain.psi('[1, 2]'::jsonb, '{"a": 1}');
SELECT retrain.psi('{"a": -1}'::jsonb, '{"a": 1}');
SELECT retrain.psi('{"a": "x"}'::jsonb, '{"a": 1}');
SELECT retrain.psi('{"a": 0}'::jsonb, '{"a": 1}');

-- Two-sample Kolmogorov-Smirnov statistic.
SELECT retrain.ks_2samp(v, r) AS d
  FROM (VALUES (1.0, true), (2.0, true), (3.0, true), (2.5, false), (3.5, false), (4.0, false)) x(v, r);
SELECT retrain.ks_2samp(v, r) AS identical
  FROM (VALUES (1.0, true), (2.0, true), (1.0, false), (2.0, false)) x(v, r);
SELECT retrain.ks_2samp(v, r) AS disjoint
  FROM (VALUES (1.0, true), (2.0, true), (3.0, false)) x(v, r);
-- Ties across the samples are one step: F_ref(2) = 1, F_cur(2) = 1/2.
SELECT retrain.ks_2samp(v, r) AS tied
  FROM (VALUES (2.0, true), (2.0, false), (3.0, false), (NULL, true), ('NaN', false)) x(v, r);
SELECT retrain.ks_2samp(v, r) AS one_sample FROM (VALUES (1.0, true), (2.0, true)) x(v, r);

-- The p-value of D, as scipy's ks_2samp(method='auto'): exact while neither
-- sample has more than 10,000 values (d = 1 between two samples of 10 is
-- 2 / C(20, 10)), asymptotic beyond.
SELECT retrain.ks_pvalue(0.6666666666666666, 3, 3) AS tiny_samples,
       retrain.ks_pvalue(0.05, 1000, 1200) AS moderate,
       retrain.ks_pvalue(0.01, 100000, 100000) AS large_samples;
SELECT retrain.ks_pvalue(0, 10, 10) AS d_zero, retrain.ks_pvalue(1, 10, 10) AS d_one,
       retrain.ks_pvalue(NULL, 10, 10) AS null_d;
-- Statistic and p-value in one query.
SELECT round(retrain.ks_2samp(v, r)::numeric, 6) AS d,
       round(retrain.ks_pvalue(retrain.ks_2samp(v, r), count(*) FILTER (WHERE r),
                               count(*) FILTER (WHERE NOT r))::numeric, 6) AS p
  FROM (SELECT i <= 500 AS r, CASE WHEN i <= 500 THEN i ELSE i - 440 END::float8 AS v
          FROM generate_series(1, 1000) i) s;
SELECT retrain.ks_pvalue(1.5, 10, 10);
SELECT retrain.ks_pvalue('NaN', 10, 10);
SELECT retrain.ks_pvalue(0.5, 0, 10);

-- The cycle's numeric feature counts: _feature_histograms gives, feature by
-- feature, what histogram_missing(_as_float8(features->>f), edges) gives,
-- for numbers, decimal strings, and what is missing (NULL, json null, a
-- missing key, NaN, other strings, booleans, objects, arrays, numbers
-- beyond float8, a row whose features are not an object).
CREATE TEMP TABLE feature_rows (features jsonb);
INSERT INTO feature_rows VALUES
    ('{"x": 1, "y": "2.5"}'), ('{"x": -3.25, "y": " 7 "}'), ('{"x": 1e400, "y": "1e400"}'),
    ('{"x": "NaN", "y": "Infinity"}'), ('{"x": "-inf", "y": "0x1A"}'), ('{"x": true, "y": [1]}'),
    ('{"x": {"v": 1}, "y": null}'), ('{"z": 5}'), ('[1, 2]'), ('"x"'), (NULL), ('{"x": 10, "y": 10}'),
    ('{"x": 9.999999999999999, "y": "1e-400"}');
SELECT retrain._feature_histograms(features, '{x,y}', '{0,10,-Infinity,1,Infinity}', '{2,5}') =
       jsonb_build_object('x', to_jsonb(retrain.histogram_missing(retrain._as_float8(features->>'x'), '{0,10}')),
                          'y', to_jsonb(retrain.histogram_missing(retrain._as_float8(features->>'y'), '{-Infinity,1,Infinity}')))
       AS same,
       retrain._feature_histograms(features, '{x,y}', '{0,10,-Infinity,1,Infinity}', '{2,5}') AS counts
  FROM feature_rows;
-- a feature without edges has one bucket; no rows: NULL
SELECT retrain._feature_histograms(features, '{x}', '{}', '{0}') FROM feature_rows;
SELECT retrain._feature_histograms(features, '{x}', '{}', '{0}') FROM feature_rows WHERE false;
-- NULL names, edges or ends: no row can count (as histogram's NULL edges)
SELECT retrain._feature_histograms(features, NULL, '{}', '{0}') IS NULL AS skipped,
       retrain._feature_histograms(features, '{x}', NULL, '{0}') IS NULL AS no_edges FROM feature_rows;
-- the arguments are checked, each error naming the aggregate
SELECT retrain._feature_histograms(features, '{x,y}', '{0,1}', '{1}') FROM feature_rows;
SELECT retrain._feature_histograms(features, '{x,y}', '{0,1}', '{1,1}') FROM feature_rows;
SELECT retrain._feature_histograms(features, '{x,y}', '{0,1}', '{2,1}') FROM feature_rows;
SELECT retrain._feature_histograms(features, '{x,x}', '{0,1}', '{1,2}') FROM feature_rows;
SELECT retrain._feature_histograms(features, '{x}', '{1,NaN}', '{2}') FROM feature_rows;
SELECT retrain._feature_histograms(features, '{x}', '{1,0}', '{2}') FROM feature_rows;
SELECT retrain._feature_histograms(features, '{NULL}', '{1}', '{1}') FROM feature_rows;
-- edges computed per row must stay the same within a group
SELECT retrain._feature_histograms(features, '{x}', ARRAY[length(features::text)::float8], '{1}') FROM feature_rows;
DROP TABLE feature_rows;
