/*-------------------------------------------------------------------------
 *
 * drift_kstest.c
 *	  retrain.ks_pvalue(d, n1, n2): the p-value of the two-sample
 *	  Kolmogorov-Smirnov statistic for the two-sided test, as scipy's
 *	  ks_2samp(method='auto') computes it: exact while neither sample has
 *	  more than 10,000 values (ks_exact_sf below), else asymptotic: the
 *	  survival function of the one-sample two-sided statistic D_n at d, with
 *	  n the effective sample size round(n1 n2 / (n1 + n2)).
 *
 * The distribution of D_n has no single good algorithm; following Simard
 * and L'Ecuyer (2011), the region of (n, d) picks one of:
 *
 * - Ruben and Gambino's closed forms near the ends (n d <= 1, n d >= n - 1);
 * - twice the one-sided Smirnov probability (exact for d >= 1/2, and an
 *   excellent approximation in the far tail), computed with the
 *   Birnbaum-Tingey sum;
 * - Durbin's matrix method in the form of Marsaglia, Tsang and Wang (2003)
 *   for small n d^2;
 * - Pomeranz's recursion (1974) for n <= 140;
 * - the Pelz-Good asymptotic series (1976) for large n.
 *
 * The boundaries between the regions are scipy's, so that the two agree to
 * rounding.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/float.h"

#include "util.h"

/* scaling of intermediate results, by 2^128 */
#define SCALE_EXP 128

static double
clip_probability(double p)
{
	return p < 0 ? 0 : (p > 1 ? 1 : p);
}

/*
 * log(j!) - j log j for j >= 1: Stirling's series beyond small j, where
 * lgamma of a large argument would lose digits to its own size.
 */
static long double
log_factorial_over_power(long double j)
{
	if (j < 16)
		return lgammal(j + 1) - j * logl(j);
	return -j + 0.5L * logl(2 * (long double) M_PI * j) + 1 / (12 * j)
		- 1 / (360 * j * j * j) + 1 / (1260 * j * j * j * j * j)
		- 1 / (1680 * j * j * j * j * j * j * j);
}

/*
 * The one-sided Smirnov survival function P(D+_n >= x), by the
 * Birnbaum-Tingey sum
 *
 *   x sum_{j=0}^{floor(n(1-x))} C(n,j) (x + j/n)^(j-1) (1 - x - j/n)^(n-j)
 *
 * with every term formed in logarithms from pieces of moderate size (in long
 * double), so that n in the millions keeps 13 or more digits:
 *   log C(n,j) n^-j j^j = A_j - B_j, A_j = log(n! / ((n-j)! n^j)) summed as
 *   log1p(-i/n), B_j = log(j!) - j log j.
 */
static double
smirnov_sf(int64 n, double x)
{
	long double nn = (long double) n;
	long double lx = x;
	int64		jmax;
	int64		j;
	long double a = 0;			/* A_j */
	long double sum = 0;
	long double peak = -INFINITY;

	if (x <= 0)
		return 1.0;
	if (x >= 1)
		return 0.0;
	jmax = (int64) floorl(nn * (1 - lx));

	for (j = 0; j <= jmax; j++)
	{
		long double u = (long double) j / nn;
		long double logterm;

		if (j > 0)
			a += log1pl(-(long double) (j - 1) / nn);
		if (1 - lx - u <= 0)
			break;
		if (j == 0)
			logterm = nn * log1pl(-lx) - logl(lx);
		else
			logterm = a - log_factorial_over_power(j)
				+ j * logl((lx + u) / u) - logl(lx + u)
				+ (nn - j) * log1pl(-(lx + u));
		sum += expl(logterm);
		if (logterm > peak)
			peak = logterm;
		else if (logterm < peak - 80)
			break;				/* past the peak, and negligible from here on */
	}
	return (double) (sum * lx);
}

/* n! / n^n, in logarithms, by Stirling's series with n log n taken out */
static double
log_factorial_over_power_n(int64 n)
{
	return (double) log_factorial_over_power((long double) n);
}

/*
 * Durbin's matrix method (Marsaglia, Tsang and Wang): P(D_n < d) is the
 * (k,k) element of H^n times n!/n^n, H an m x m matrix, m = 2k - 1,
 * k = ceil(n d).  Powers by repeated squaring, rescaled by 2^128 as needed.
 */
static void
matmul(const double *a, const double *b, double *out, int m)
{
	int			i;
	int			j;
	int			l;

	for (i = 0; i < m; i++)
		for (j = 0; j < m; j++)
		{
			double		s = 0;

			for (l = 0; l < m; l++)
				s += a[i * m + l] * b[l * m + j];
			out[i * m + j] = s;
		}
}

static double
kolmogorov_cdf_durbin(int64 n, double d)
{
	double		nd = n * d;
	int			k;
	int			m;
	double		h;
	double	   *H;
	double	   *P;
	double	   *T;
	double	   *v;
	double	   *w;
	double		fac = 1.0;
	int			i;
	int			j;
	int64		e;
	int			hexp = 0;
	int			pexp = 0;
	double		p;

	if (d >= 1.0)
		return 1.0;
	if (nd <= 0.5)
		return 0.0;
	k = (int) ceil(nd);
	h = k - nd;
	m = 2 * k - 1;

	H = palloc0(sizeof(double) * m * m);
	P = palloc0(sizeof(double) * m * m);
	T = palloc(sizeof(double) * m * m);
	v = palloc(sizeof(double) * m);
	w = palloc(sizeof(double) * m);

	/* v[j] = (1 - h^(j+1)) / (j+1)!, w[j] = 1 / j! */
	for (j = 0; j < m; j++)
	{
		w[j] = fac;
		fac /= (j + 1);
		v[j] = (1.0 - pow(h, j + 1)) * fac;
	}
	v[m - 1] = (1.0 + pow(Max(2 * h - 1.0, 0.0), m) - 2 * pow(h, m)) * fac;

	/* H: v down the first column and (reversed) along the last row, 1/j! on the diagonals above */
	for (i = 1; i < m; i++)
		for (j = i - 1; j < m; j++)
			H[j * m + i] = w[j - (i - 1)];
	for (j = 0; j < m; j++)
	{
		H[j * m + 0] = v[j];
		H[(m - 1) * m + j] = v[m - 1 - j];
	}
	for (i = 0; i < m; i++)
		P[i * m + i] = 1.0;

	for (e = n; e > 0; e /= 2)
	{
		CHECK_FOR_INTERRUPTS();
		if (e % 2)
		{
			matmul(P, H, T, m);
			memcpy(P, T, sizeof(double) * m * m);
			pexp += hexp;
		}
		matmul(H, H, T, m);
		memcpy(H, T, sizeof(double) * m * m);
		hexp *= 2;
		if (fabs(H[(k - 1) * m + (k - 1)]) > ldexp(1.0, SCALE_EXP))
		{
			for (i = 0; i < m * m; i++)
				H[i] = ldexp(H[i], -SCALE_EXP);
			hexp += SCALE_EXP;
		}
	}

	p = P[(k - 1) * m + (k - 1)];
	for (e = 1; e <= n; e++)
	{
		p = (double) e * p / (double) n;
		if (fabs(p) < ldexp(1.0, -SCALE_EXP))
		{
			p = ldexp(p, SCALE_EXP);
			pexp -= SCALE_EXP;
		}
	}
	if (pexp != 0)
		p = ldexp(p, pexp);

	pfree(H);
	pfree(P);
	pfree(T);
	pfree(v);
	pfree(w);
	return p;
}

/*
 * Pomeranz's recursion: P(D_n <= x) from 2n + 1 convolutions of a row of
 * at most 2(floor(n x) + 1) entries with Poisson-like weights, of which only
 * a contiguous band is non-zero.
 */
static void
pomeranz_band(int i, int n, int ll, int ceilf, int roundf, int *j1, int *j2)
{
	int			lo;
	int			hi;

	if (i == 0)
	{
		lo = -ll - ceilf - 1;
		hi = ll + ceilf - 1;
	}
	else
	{
		int			half = (i + 1) / 2;

		if ((i + 1) % 2 == 0)
		{
			if (half == n + 1)
			{
				lo = n - ll - ceilf - 1;
				hi = n + ll + ceilf - 1;
			}
			else
			{
				lo = half - 1 - ll - roundf - 1;
				hi = half + ll - 1 + ceilf - 1;
			}
		}
		else
		{
			lo = half - 1 - ll - 1;
			hi = half + ll + roundf - 1;
		}
	}
	*j1 = Max(lo + 2, 0);
	*j2 = Min(hi, n);
}

static double
kolmogorov_cdf_pomeranz(int n, double x)
{
	double		t = n * x;
	int			ll = (int) floor(t);
	double		f = t - ll;
	double		g = Min(f, 1.0 - f);
	int			ceilf = f > 0 ? 1 : 0;
	int			roundf = f > 0.5 ? 1 : 0;
	int			npwrs = 2 * (ll + 1);
	double	   *gpow = palloc(sizeof(double) * npwrs);
	double	   *twogpow = palloc(sizeof(double) * npwrs);
	double	   *onem2gpow = palloc(sizeof(double) * npwrs);
	double	   *V0 = palloc0(sizeof(double) * npwrs);
	double	   *V1 = palloc0(sizeof(double) * npwrs);
	int			V0s = 0;
	int			V1s = 0;
	int			j1;
	int			j2;
	int			i;
	int			m;
	int			expnt = 0;
	double		ans;

	gpow[0] = twogpow[0] = onem2gpow[0] = 1.0;
	for (m = 1; m < npwrs; m++)
	{
		gpow[m] = gpow[m - 1] * (g / n) / m;
		twogpow[m] = twogpow[m - 1] * (2 * g / n) / m;
		onem2gpow[m] = onem2gpow[m - 1] * ((1 - 2 * g) / n) / m;
	}

	V1[0] = 1;
	pomeranz_band(0, n, ll, ceilf, roundf, &j1, &j2);
	for (i = 1; i < 2 * n + 2; i++)
	{
		int			k1 = j1;
		double	   *tmp = V0;
		int			tmps = V0s;
		const double *pw;
		int			len;

		CHECK_FOR_INTERRUPTS();

		V0 = V1;
		V1 = tmp;
		V0s = V1s;
		V1s = tmps;
		memset(V1, 0, sizeof(double) * npwrs);
		pomeranz_band(i, n, ll, ceilf, roundf, &j1, &j2);
		if (i == 1 || i == 2 * n + 1)
			pw = gpow;
		else
			pw = (i % 2) ? twogpow : onem2gpow;
		len = j2 - k1 + 1;
		if (len > 0)
		{
			int			start = j1 - k1;
			int			count = j2 - j1 + 1;
			/* the row's band and the weights, each cut at the arrays' end */
			int			alen = Min(len, npwrs - (k1 - V0s));
			int			blen = Min(len, npwrs);
			int			r;
			double		vmax = 0;

			/* entries start .. start + count - 1 of the full convolution */
			for (r = 0; r < count; r++)
			{
				int			pos = start + r;
				double		s = 0;
				int			a;

				for (a = Max(0, pos - (blen - 1)); a <= Min(pos, alen - 1); a++)
					s += V0[k1 - V0s + a] * pw[pos - a];
				V1[r] = s;
				vmax = Max(vmax, s);
			}
			if (vmax > 0 && vmax < ldexp(1.0, -SCALE_EXP))
			{
				for (r = 0; r < count; r++)
					V1[r] = ldexp(V1[r], SCALE_EXP);
				expnt -= SCALE_EXP;
			}
			V1s = V0s + j1 - k1;
		}
	}

	ans = V1[n - V1s];
	for (m = 1; m <= n; m++)
	{
		if (fabs(ans) > ldexp(1.0, SCALE_EXP))
		{
			ans = ldexp(ans, -SCALE_EXP);
			expnt += SCALE_EXP;
		}
		ans *= m;
	}
	if (expnt != 0)
		ans = ldexp(ans, expnt);

	pfree(gpow);
	pfree(twogpow);
	pfree(onem2gpow);
	pfree(V0);
	pfree(V1);
	return ans;
}

/*
 * The Pelz-Good approximation to P(D_n <= x): Li-Chien and Korolyuk's
 * expansion K0(z) + K1(z)/sqrt(n) + K2(z)/n + K3(z)/n^(3/2), z = x sqrt(n),
 * with each K written as Jacobi theta series that converge fast for small z.
 */
static double
kolmogorov_cdf_pelz_good(int64 n, double x)
{
	const double pi2 = M_PI * M_PI;
	const double pi4 = pi2 * pi2;
	const double pi6 = pi4 * pi2;
	const double sqrt2pi = sqrt(2 * M_PI);
	double		z;
	double		z2;
	double		z3;
	double		z4;
	double		z6;
	double		qlog;
	double		q;
	double		K[4] = {0, 0, 0, 0};
	double		k1a;
	double		k1b;
	double		k2a;
	double		k2b;
	double		k2c;
	double		k3a;
	double		k3b;
	double		k3c;
	double		k3d;
	double		k2extra = 0;
	double		k3extra = 0;
	double		sqrt3z;
	int			maxk;
	int			k;
	int			i;

	if (x <= 0.0)
		return 0.0;
	if (x >= 1.0)
		return 1.0;
	z = sqrt((double) n) * x;
	z2 = z * z;
	z3 = z2 * z;
	z4 = z2 * z2;
	z6 = z4 * z2;
	qlog = -pi2 / 8 / z2;
	if (qlog < -708)
		return 0.0;
	q = exp(qlog);

	k1a = -z2;
	k1b = pi2 / 4;
	k2a = 6 * z6 + 2 * z4;
	k2b = (2 * z4 - 5 * z2) * pi2 / 4;
	k2c = pi4 * (1 - 2 * z2) / 16;
	k3d = pi6 * (5 - 30 * z2) / 64;
	k3c = pi4 * (-60 * z2 + 212 * z4) / 16;
	k3b = pi2 * (135 * z4 - 96 * z6) / 4;
	k3a = -30 * z6 - 90 * z4 * z4;

	/* Horner over odd m = 2k - 1 of sum c_i q^(m^2) */
	maxk = (int) ceil(16 * z / M_PI);
	for (k = maxk; k > 0; k--)
	{
		double		m = 2 * k - 1;
		double		m2 = m * m;
		double		m4 = m2 * m2;
		double		m6 = m4 * m2;
		double		qp = pow(q, 8 * k);
		double		c[4];

		c[0] = 1.0;
		c[1] = k1a + k1b * m2;
		c[2] = k2a + k2b * m2 + k2c * m4;
		c[3] = k3a + k3b * m2 + k3c * m4 + k3d * m6;
		for (i = 0; i < 4; i++)
			K[i] = K[i] * qp + c[i];
	}
	for (i = 0; i < 4; i++)
		K[i] *= q * sqrt2pi;
	K[0] /= z;
	K[1] /= 6 * z4;
	K[2] /= 72 * z6 * z;
	K[3] /= 6480 * z4 * z6;

	/* the sums over all integers k of the other terms of K2 and K3 */
	q = exp(-pi2 / 2 / z2);
	sqrt3z = sqrt(3.0) * z;
	for (k = maxk; k > 0; k--)
	{
		double		k2 = (double) k * k;
		double		kpi = M_PI * k;
		double		qp = pow(q, k2);

		k2extra += k2 * qp;
		k3extra += (sqrt3z + kpi) * (sqrt3z - kpi) * k2 * qp;
	}
	K[2] += k2extra * pi2 * sqrt2pi / (-36 * z3);
	K[3] += k3extra * pi2 * sqrt2pi / (216 * z6);

	return K[0] + K[1] / sqrt((double) n) + K[2] / (double) n
		+ K[3] / ((double) n * sqrt((double) n));
}

/* P(D_n > x) for the two-sided one-sample statistic. */
static double
kolmogorov_sf(int64 n, double x)
{
	double		t;
	double		nxx;
	double		cdf;

	if (x >= 1.0)
		return 0.0;
	if (x <= 0.0)
		return 1.0;
	t = n * x;
	if (t <= 1.0)
	{
		/* Ruben-Gambino: P(D_n <= x) = n!/n^n (2t - 1)^n for 1/2n <= x <= 1/n */
		if (t <= 0.5)
			return 1.0;
		if (n <= 140)
		{
			int			i;

			cdf = 1.0;
			for (i = 1; i <= n; i++)
				cdf *= i * (1.0 / n) * (2 * t - 1);
		}
		else
			cdf = exp(log_factorial_over_power_n(n) + n * log(2 * t - 1));
		return clip_probability(1.0 - cdf);
	}
	if (t >= n - 1)
		return clip_probability(2 * pow(1.0 - x, (double) n));
	if (x >= 0.5)
		return clip_probability(2 * smirnov_sf(n, x));

	nxx = t * x;
	if (n <= 140)
	{
		if (nxx <= 0.754693)
			return clip_probability(1.0 - kolmogorov_cdf_durbin(n, x));
		if (nxx <= 4)
			return clip_probability(1.0 - kolmogorov_cdf_pomeranz((int) n, x));
		return clip_probability(2 * smirnov_sf(n, x));
	}
	if (nxx >= 370.0)
		return 0.0;
	if (nxx >= 2.2)
		return clip_probability(2 * smirnov_sf(n, x));
	if (n <= 100000 && n * pow(x, 1.5) <= 1.4)
		cdf = kolmogorov_cdf_durbin(n, x);
	else
		cdf = kolmogorov_cdf_pelz_good(n, x);
	return clip_probability(1.0 - cdf);
}

/* Up to this many values in the larger sample the p-value is exact (scipy's bound). */
#define KS_EXACT_MAX_N 10000

static int64
gcd_int64(int64 a, int64 b)
{
	while (b != 0)
	{
		int64		t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * The exact P(D >= d) for samples of m and n values without ties.  Under
 * the null hypothesis every ordering of the m + n values is equally likely:
 * a monotone lattice path from (0, 0) to (m, n), one step right per value
 * of the first sample, one step up per value of the second.  D >= d when
 * the path touches a point with |x/m - y/n| >= d.  With v(x, y) the share
 * of paths to (x, y) that touched such a point,
 *
 *   v(x, y) = 1 on such a point, else (x v(x-1, y) + y v(x, y-1)) / (x + y),
 *
 * since of the paths to (x, y) the share x / (x + y) comes from the left.
 * The p-value is v(m, n), computed directly (not as 1 minus the share of
 * paths that stay inside, which would lose every digit of a small p).
 * D takes values h / lcm(m, n): d is rounded to the nearest one, and the
 * test |x n - y m| >= h gcd(m, n) is exact in integers.  Only a band of
 * each column lies inside; the rest holds 1.
 */
static double
ks_exact_sf(int64 m, int64 n, double d)
{
	int64		g = gcd_int64(m, n);
	int64		lcm = (m / g) * n;
	int64		h = (int64) rint(d * (double) lcm);
	int64		limit = h * g;
	double	   *v;
	int64		lo = 0;
	int64		x;
	int64		y;
	double		p;

	if (h <= 0)
		return 1.0;
	v = palloc(sizeof(double) * (n + 1));
	/* x = 0: outside from y m >= limit on */
	v[0] = 0.0;
	for (y = 1; y <= n; y++)
		v[y] = (y * m >= limit) ? 1.0 : v[y - 1];
	for (x = 1; x <= m; x++)
	{
		/* inside: x n - limit < y m < x n + limit */
		int64		new_lo = (x * n - limit) / m + 1;
		int64		hi = (x * n + limit - 1) / m;

		CHECK_FOR_INTERRUPTS();
		if (x * n - limit < 0)
			new_lo = 0;
		hi = Min(hi, n);
		/* points that fell below the band are outside now */
		for (y = lo; y < new_lo && y <= n; y++)
			v[y] = 1.0;
		lo = new_lo;
		for (y = lo; y <= hi; y++)
			v[y] = (y == 0) ? v[0]
				: ((double) x * v[y] + (double) y * v[y - 1]) / (double) (x + y);
		/* above the band every point was outside from the start: v = 1 */
	}
	p = v[n];
	pfree(v);
	return clip_probability(p);
}

/*
 * ks_pvalue(d float8, n1 bigint, n2 bigint): the p-value of D = d between
 * samples of n1 and n2 values.
 */
PG_FUNCTION_INFO_V1(retrain_ks_pvalue);
Datum
retrain_ks_pvalue(PG_FUNCTION_ARGS)
{
	double		d = PG_GETARG_FLOAT8(0);
	int64		n1 = PG_GETARG_INT64(1);
	int64		n2 = PG_GETARG_INT64(2);
	double		big;
	double		small;
	double		en;

	if (isnan(d) || d < 0 || d > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: d must lie in [0, 1], not %s",
						retrain_func_name(fcinfo), float8out_internal(d))));
	if (n1 < 1 || n2 < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: sample sizes must be at least 1, not " INT64_FORMAT " and " INT64_FORMAT,
						retrain_func_name(fcinfo), n1, n2)));

	if (Max(n1, n2) <= KS_EXACT_MAX_N)
		PG_RETURN_FLOAT8(ks_exact_sf(n1, n2, d));

	/* the effective sample size, rounded half to even as numpy rounds */
	big = (double) Max(n1, n2);
	small = (double) Min(n1, n2);
	en = big * small / (big + small);
	PG_RETURN_FLOAT8(kolmogorov_sf((int64) rint(en), d));
}
