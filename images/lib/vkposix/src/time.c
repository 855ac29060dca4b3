/* Local time: tzset, tzname/timezone/daylight, and the zone lookups that
 * wasi-libc's localtime_r, mktime and strftime make (its own __tz.c is a
 * UTC-only stub that ignores TZ).
 *
 * wasi-libc (musl's time code) asks two internal functions about the zone:
 * __secs_to_zone (offset, DST flag and name at an instant; localtime_r,
 * mktime) and __tm_to_tzname (strftime's %Z). src/time.ldflags wraps both,
 * mktime, and __strftime_fmt_1 (one conversion of strftime and wcsftime,
 * for %z's sign), so every caller inside wasi-libc gets these, and mktime
 * is glibc's algorithm (isdst hints, gaps) rather than musl's. Where the
 * two libraries differ, the behaviour is glibc's: vkernel/time_test.go
 * compares them line for line.
 *
 * TZ is read as glibc reads it: unset means /etc/localtime (UTC when the
 * guest has none); empty means "Universal"; a leading ':' is dropped; the
 * value is first tried as a TZif file (an absolute path, or relative to
 * TZDIR, else /usr/share/zoneinfo) and, failing that, parsed as a POSIX TZ
 * string. A string whose name parses but whose offset does not is UTC
 * under that name (tzname {name, ""}), as glibc. Leap-second ("right/")
 * files are read without their leap seconds.
 *
 * Zones once loaded are kept (a small list keyed by TZ's value) and never
 * freed, so a tm_zone or tzname pointer stays valid after TZ changes, and a
 * reader racing a tzset sees the old zone or the new one. */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Weak, as tzset: a port's own definitions link without a clash. */
__attribute__((weak)) char *tzname[2] = {"UTC", "UTC"};
__attribute__((weak)) long timezone;
__attribute__((weak)) int daylight;

/* A transition rule of a POSIX TZ string: 'J' (Julian day 1-365, no Feb
 * 29), 'D' (day 0-365) or 'M' (month, week, weekday); secs is the local
 * time of day of the change. */
struct rule {
	char kind;
	int n, m, w, d;
	long secs;
};

/* A POSIX TZ string: offsets are seconds east of UTC (the string's are
 * west). */
struct posix {
	const char *std, *dst;
	long stdoff, dstoff;
	int has_dst;
	struct rule start, end;
};

struct ttype {
	long off;
	int isdst;
	const char *name;
};

struct zone {
	struct zone *next;
	char *key; /* TZ's value, or NULL for unset */
	int is_file;
	struct posix rules;
	/* A TZif file: */
	int nt, ntypes, has_footer;
	int64_t *trans;
	unsigned char *tidx;
	struct ttype *types;
	struct posix footer;
	/* What tzset gives tzname, timezone and daylight. */
	const char *name0, *name1;
	long tz;
	int dl;
};

static struct zone *zones, *cur;

/* intern keeps one copy of each zone name for good: tm_zone and tzname
 * point at them. */
static const char *intern(const char *s, size_t n) {
	static struct name {
		struct name *next;
		char s[];
	} *names;
	for (struct name *p = names; p; p = p->next)
		if (strlen(p->s) == n && memcmp(p->s, s, n) == 0)
			return p->s;
	struct name *p = malloc(sizeof *p + n + 1);
	if (!p)
		return "";
	memcpy(p->s, s, n);
	p->s[n] = 0;
	p->next = names;
	names = p;
	return p->s;
}

/* days_from_civil: days since 1970-01-01 of a proleptic Gregorian date. */
static long long days_from_civil(long long y, int m, int d) {
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static int is_leap(long long y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

/* year_of: the UTC calendar year of t (the inverse of days_from_civil,
 * by 400-year eras of 146097 days). */
static long long year_of(long long t) {
	long long days = t / 86400 - (t % 86400 < 0) + 719468;
	long long era = (days >= 0 ? days : days - 146096) / 146097;
	long long doe = days - era * 146097;
	long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long long mp = (5 * doy + 2) / 153;
	return yoe + era * 400 + (mp >= 10);
}

/* ---------------------------------------------------------------- POSIX TZ */

/* parse_name reads a zone name: <...> with letters, digits, '+' and '-', or
 * three or more letters. */
static int parse_name(const char **s, const char **out) {
	const char *p = *s;
	size_t n = 0;
	if (*p == '<') {
		p++;
		while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= '0' && p[n] <= '9') ||
			p[n] == '+' || p[n] == '-')
			n++;
		if (p[n] != '>' || n < 3)
			return 0;
		*out = intern(p, n);
		*s = p + n + 1;
		return 1;
	}
	while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z'))
		n++;
	if (n < 3)
		return 0;
	*out = intern(p, n);
	*s = p + n;
	return 1;
}

/* parse_hms reads [+-]hh[:mm[:ss]] (hh at most maxh) into seconds, the sign
 * applied. */
static int parse_hms(const char **s, long maxh, long *out) {
	const char *p = *s;
	int neg = 0;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (*p < '0' || *p > '9')
		return 0;
	long part[3] = {0, 0, 0};
	for (int i = 0; i < 3; i++) {
		if (i > 0) {
			if (*p != ':' || p[1] < '0' || p[1] > '9')
				break;
			p++;
		}
		long v = 0;
		while (*p >= '0' && *p <= '9') {
			if (v < 1000)
				v = v * 10 + (*p - '0');
			p++;
		}
		part[i] = v;
	}
	if (part[0] > maxh)
		part[0] = maxh;
	if (part[1] > 59)
		part[1] = 59;
	if (part[2] > 59)
		part[2] = 59;
	long v = part[0] * 3600 + part[1] * 60 + part[2];
	*out = neg ? -v : v;
	*s = p;
	return 1;
}

static int parse_num(const char **s, int *out) {
	const char *p = *s;
	if (*p < '0' || *p > '9')
		return 0;
	int v = 0;
	while (*p >= '0' && *p <= '9') {
		if (v < 100000)
			v = v * 10 + (*p - '0');
		p++;
	}
	*out = v;
	*s = p;
	return 1;
}

/* parse_rule reads ",Jn[/time]", ",n[/time]" or ",Mm.w.d[/time]". */
static int parse_rule(const char **s, struct rule *r) {
	const char *p = *s;
	if (*p++ != ',')
		return 0;
	memset(r, 0, sizeof *r);
	if (*p == 'J') {
		p++;
		r->kind = 'J';
		if (!parse_num(&p, &r->n) || r->n < 1 || r->n > 365)
			return 0;
	} else if (*p == 'M') {
		p++;
		r->kind = 'M';
		if (!parse_num(&p, &r->m) || *p++ != '.' || !parse_num(&p, &r->w) || *p++ != '.' ||
			!parse_num(&p, &r->d))
			return 0;
		if (r->m < 1 || r->m > 12 || r->w < 1 || r->w > 5 || r->d > 6)
			return 0;
	} else {
		r->kind = 'D';
		if (!parse_num(&p, &r->n) || r->n > 365)
			return 0;
	}
	r->secs = 7200;
	if (*p == '/') {
		p++;
		if (!parse_hms(&p, 167, &r->secs))
			return 0;
	}
	*s = p;
	return 1;
}

/* parse_posix parses a POSIX TZ string into z. Returns 0 when not even the
 * standard name is there; z is then UTC with no names. A name without a
 * valid offset leaves UTC under that name, as glibc. */
static int parse_posix(const char *s, struct posix *z) {
	memset(z, 0, sizeof *z);
	z->std = "";
	z->dst = "";
	if (!parse_name(&s, &z->std))
		return 0;
	long off;
	if (!parse_hms(&s, 24, &off))
		return 1;
	z->stdoff = z->dstoff = -off;
	if (!*s) {
		z->dst = z->std;
		return 1;
	}
	if (!parse_name(&s, &z->dst)) {
		z->dst = z->std;
		return 1;
	}
	z->has_dst = 1;
	z->dstoff = z->stdoff + 3600;
	if (*s && *s != ',' && parse_hms(&s, 24, &off))
		z->dstoff = -off;
	/* No rules: the US ones since 2007 (glibc reads them from the
	 * posixrules file, America/New_York, for the same result since
	 * then). */
	struct rule start = {'M', 0, 3, 2, 0, 7200}, end = {'M', 0, 11, 1, 0, 7200};
	z->start = start;
	z->end = end;
	if (*s == ',' && s[1]) {
		struct rule a, b;
		if (parse_rule(&s, &a) && parse_rule(&s, &b)) {
			z->start = a;
			z->end = b;
		}
	}
	return 1;
}

/* rule_day: the day of year (0-based) a rule names in year y. */
static int rule_day(const struct rule *r, long long y) {
	switch (r->kind) {
	case 'J':
		return r->n - 1 + (is_leap(y) && r->n >= 60);
	case 'D':
		return r->n;
	default: {
		static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
		long long first = days_from_civil(y, r->m, 1);
		int dow = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
		int day = 1 + (r->d - dow + 7) % 7 + (r->w - 1) * 7;
		int len = mdays[r->m - 1] + (r->m == 2 && is_leap(y));
		while (day > len)
			day -= 7;
		return (int)(first - days_from_civil(y, 1, 1)) + day - 1;
	}
	}
}

/* rule_time: the instant of a rule's change in year y, its time of day
 * being local time at offset off. */
static long long rule_time(const struct rule *r, long long y, long off) {
	/* glibc counts the day of a year up to 1970 from 1970-01-01: before
	 * 1970 a northern zone's rules give standard time all year, a
	 * southern one's DST. Done the same so that both agree. */
	long long base = y > 1970 ? days_from_civil(y, 1, 1) : 0;
	return (base + rule_day(r, y)) * 86400 + r->secs - off;
}

static void posix_at(const struct posix *z, long long t, struct ttype *out) {
	out->off = z->stdoff;
	out->isdst = 0;
	out->name = z->std;
	if (!z->has_dst)
		return;
	/* The year of the instant in UTC, as glibc: both changes of that
	 * year decide. */
	long long y = year_of(t);
	long long start = rule_time(&z->start, y, z->stdoff), end = rule_time(&z->end, y, z->dstoff);
	int dst = start < end ? (t >= start && t < end) : (t < end || t >= start);
	if (dst) {
		out->off = z->dstoff;
		out->isdst = 1;
		out->name = z->dst;
	}
}

/* ------------------------------------------------------------------ TZif */

static uint32_t be32(const unsigned char *p) {
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p) { return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)); }

/* read_file reads a whole file of at most 4 MiB; NULL if it is not there
 * or not a regular file. */
static unsigned char *read_file(const char *path, size_t *len) {
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	unsigned char *buf = malloc(cap);
	for (;;) {
		if (!buf)
			break;
		if (n == cap) {
			if (cap >= (4u << 20)) {
				free(buf);
				buf = NULL;
				break;
			}
			unsigned char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0) {
			free(buf);
			buf = NULL;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
}

/* load_tzif fills z from a TZif file's contents (version 1: its 32-bit
 * data; 2 and later: the 64-bit data and the footer's TZ string). */
static int load_tzif(struct zone *z, const unsigned char *b, size_t len) {
	if (len < 44 || memcmp(b, "TZif", 4) != 0)
		return 0;
	int v2 = b[4] >= '2';
	const unsigned char *h = b;
	size_t tsize = 4;
	for (int pass = 0;; pass++) {
		if ((size_t)(h - b) + 44 > len || memcmp(h, "TZif", 4) != 0)
			return 0;
		uint32_t isut = be32(h + 20), isstd = be32(h + 24), leap = be32(h + 28), timecnt = be32(h + 32),
			 typecnt = be32(h + 36), charcnt = be32(h + 40);
		if (timecnt > 100000 || typecnt == 0 || typecnt > 256 || charcnt > 10000 || leap > 10000 ||
			isut > 256 || isstd > 256)
			return 0;
		size_t data = timecnt * tsize + timecnt + typecnt * 6 + charcnt + leap * (tsize + 4) + isstd + isut;
		if ((size_t)(h - b) + 44 + data > len)
			return 0;
		if (v2 && pass == 0) {
			h += 44 + data;
			tsize = 8;
			continue;
		}
		const unsigned char *p = h + 44;
		z->nt = (int)timecnt;
		z->ntypes = (int)typecnt;
		z->trans = malloc((timecnt + 1) * sizeof *z->trans);
		z->tidx = malloc(timecnt + 1);
		z->types = malloc(typecnt * sizeof *z->types);
		if (!z->trans || !z->tidx || !z->types)
			return 0;
		for (uint32_t i = 0; i < timecnt; i++, p += tsize)
			z->trans[i] = tsize == 8 ? be64(p) : (int32_t)be32(p);
		for (uint32_t i = 0; i < timecnt; i++, p++) {
			if (*p >= typecnt)
				return 0;
			z->tidx[i] = *p;
		}
		const unsigned char *chars = p + typecnt * 6;
		for (uint32_t i = 0; i < typecnt; i++, p += 6) {
			unsigned idx = p[5];
			if (idx >= charcnt)
				return 0;
			z->types[i].off = (int32_t)be32(p);
			z->types[i].isdst = p[4] != 0;
			z->types[i].name = intern((const char *)chars + idx, strnlen((const char *)chars + idx, charcnt - idx));
		}
		p = chars + charcnt + leap * (tsize + 4) + isstd + isut;
		if (v2 && p < b + len && *p == '\n') {
			const unsigned char *e = memchr(p + 1, '\n', (size_t)(b + len - p - 1));
			if (e && e > p + 1) {
				char *footer = strndup((const char *)p + 1, (size_t)(e - p - 1));
				if (footer && parse_posix(footer, &z->footer) && z->footer.std[0])
					z->has_footer = 1;
				free(footer);
			}
		}
		break;
	}
	/* tzname and the variables, as glibc: the names of the last
	 * transitions to a standard and to a DST type; timezone from the
	 * last standard type; daylight if any transition is to a DST type. */
	const char *names[2] = {NULL, NULL};
	for (int i = z->nt; i > 0 && !(names[0] && names[1]);) {
		const struct ttype *ty = &z->types[z->tidx[--i]];
		if (!names[ty->isdst])
			names[ty->isdst] = ty->name;
	}
	if (!names[0])
		names[0] = z->types[0].name;
	if (!names[1])
		names[1] = names[0];
	z->name0 = names[0];
	z->name1 = names[1];
	/* No transitions: the only type; none to a standard type: 0. */
	z->tz = z->nt == 0 ? -z->types[0].off : 0;
	z->dl = 0;
	for (int i = 0; i < z->nt; i++)
		z->dl |= z->types[z->tidx[i]].isdst;
	for (int i = z->nt - 1; i >= 0; i--)
		if (!z->types[z->tidx[i]].isdst) {
			z->tz = -z->types[z->tidx[i]].off;
			break;
		}
	z->is_file = 1;
	return 1;
}

static int load_file(struct zone *z, const char *name) {
	char path[PATH_MAX];
	if (name[0] == '/') {
		if (strlen(name) >= sizeof path)
			return 0;
		strcpy(path, name);
	} else {
		const char *dir = getenv("TZDIR");
		if (!dir || !*dir)
			dir = "/usr/share/zoneinfo";
		if (strlen(dir) + 1 + strlen(name) >= sizeof path)
			return 0;
		strcpy(path, dir);
		strcat(path, "/");
		strcat(path, name);
	}
	size_t len;
	unsigned char *b = read_file(path, &len);
	if (!b)
		return 0;
	int ok = load_tzif(z, b, len);
	free(b);
	if (!ok) {
		free(z->trans);
		free(z->tidx);
		free(z->types);
		z->trans = NULL;
		z->tidx = NULL;
		z->types = NULL;
		z->nt = z->ntypes = z->has_footer = 0;
	}
	return ok;
}

/* ----------------------------------------------------------------- zones */

static struct zone *load(const char *key) {
	struct zone *z = calloc(1, sizeof *z);
	if (!z)
		return NULL;
	if (key && !(z->key = strdup(key))) {
		free(z);
		return NULL;
	}
	const char *name = key;
	if (name && !*name)
		name = "Universal";
	if (name && *name == ':')
		name++;
	if (load_file(z, name ? name : "/etc/localtime"))
		return z;
	if (!name || !*name) {
		/* No /etc/localtime: UTC. */
		z->rules.std = z->rules.dst = "UTC";
	} else {
		parse_posix(name, &z->rules);
	}
	z->name0 = z->rules.std;
	z->name1 = z->rules.dst;
	z->tz = -z->rules.stdoff;
	z->dl = z->rules.stdoff != z->rules.dstoff;
	return z;
}

/* current returns the zone TZ names now, loading it the first time. */
static struct zone *current(void) {
	const char *key = getenv("TZ");
	struct zone *z = cur;
	if (z && (key ? z->key && strcmp(z->key, key) == 0 : !z->key))
		return z;
	for (z = zones; z; z = z->next)
		if (key ? z->key && strcmp(z->key, key) == 0 : !z->key)
			break;
	if (!z) {
		z = load(key);
		if (!z)
			return cur;
		z->next = zones;
		zones = z;
	}
	cur = z;
	return z;
}

/* update loads the zone TZ names if it changed and sets tzname, timezone
 * and daylight from it. */
static void update(void) {
	struct zone *z = current();
	if (!z)
		return;
	tzname[0] = (char *)z->name0;
	tzname[1] = (char *)z->name1;
	timezone = z->tz;
	daylight = z->dl;
}

/* Weak: a port's own tzset (Redis's compat layer has an empty one) links
 * without a clash; localtime and mktime do not go through it. */
__attribute__((weak)) void tzset(void) { update(); }

/* zone_at: the local time type in effect at t. */
static void zone_at(const struct zone *z, long long t, struct ttype *out) {
	if (!z) {
		out->off = 0;
		out->isdst = 0;
		out->name = "UTC";
		return;
	}
	if (!z->is_file) {
		posix_at(&z->rules, t, out);
		return;
	}
	if (z->nt == 0 || t < z->trans[0]) {
		/* Before the first transition: the first standard type. */
		int i = 0;
		while (i < z->ntypes && z->types[i].isdst)
			i++;
		*out = z->types[i < z->ntypes ? i : 0];
		return;
	}
	if (t >= z->trans[z->nt - 1]) {
		if (z->has_footer)
			posix_at(&z->footer, t, out);
		else
			*out = z->types[z->tidx[z->nt - 1]];
		return;
	}
	int lo = 0, hi = z->nt - 1; /* trans[lo] <= t < trans[hi] */
	while (hi - lo > 1) {
		int mid = lo + (hi - lo) / 2;
		if (z->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	*out = z->types[z->tidx[lo]];
}

/* Called by wasi-libc's localtime_r (local 0) and mktime (which the library
 * replaces): the zone at t. TZ is looked at on every call, so a change
 * shows at once. */
void __wrap___secs_to_zone(long long t, int local, int *isdst, long *offset, long *oppoff, const char **zonename) {
	(void)local;
	struct ttype ty;
	update();
	zone_at(cur, t, &ty);
	*isdst = ty.isdst;
	*offset = ty.off;
	if (oppoff)
		*oppoff = ty.off;
	*zonename = ty.name;
}

/* strftime's %Z: the struct's own zone name, else tzname for its DST
 * flag, as glibc (wasi-libc answers "" for a name it did not hand out). */
const char *__wrap___tm_to_tzname(const struct tm *tm) {
	if (tm->__tm_zone && *tm->__tm_zone)
		return tm->__tm_zone;
	update();
	return tzname[tm->tm_isdst > 0];
}

/* valid reports whether t's local time at offset off is off's. */
static int valid(const struct zone *z, long long t, long off, struct ttype *ty) {
	zone_at(z, t, ty);
	return ty->off == off;
}

/* mktime as glibc's: the local time's instant; in a gap, the wall clock
 * read with the offset before the change (isdst 0 asks for the standard
 * reading, 1 the DST one); when the time's DST flag differs from a tm_isdst
 * of 0 or 1, the offset of the nearest instant (weekly probes, up to about
 * 7 years either way) with the asked flag, else one hour's difference. */
time_t __wrap_mktime(struct tm *tm) {
	update();
	const struct zone *z = cur;
	long long y = (long long)tm->tm_year + 1900, mon = tm->tm_mon;
	y += mon / 12;
	mon %= 12;
	if (mon < 0) {
		mon += 12;
		y--;
	}
	long long w = (days_from_civil(y, (int)mon + 1, 1) + tm->tm_mday - 1) * 86400 + (long long)tm->tm_hour * 3600 +
		      (long long)tm->tm_min * 60 + tm->tm_sec;
	int want = tm->tm_isdst < 0 ? -1 : tm->tm_isdst > 0;
	/* The offsets around w: true instants lie within a day and a bit
	 * of w. */
	struct ttype before, after, mid, ty;
	zone_at(z, w - 100000, &before);
	zone_at(z, w + 100000, &after);
	zone_at(z, w - before.off, &mid);
	long cand[3] = {before.off, mid.off, after.off};
	long long found[3];
	int isdst[3], nfound = 0;
	for (int i = 0; i < 3; i++) {
		long long t = w - cand[i];
		int dup = 0;
		for (int j = 0; j < nfound; j++)
			dup |= found[j] == t;
		if (!dup && valid(z, t, cand[i], &ty)) {
			isdst[nfound] = ty.isdst;
			found[nfound++] = t;
		}
	}
	long long t;
	if (nfound > 0) {
		int pick = 0;
		for (int i = 0; i < nfound; i++)
			if (want >= 0 && isdst[i] == want) {
				pick = i;
				break;
			}
		t = found[pick];
	} else {
		/* A gap: the reading with the offset before (which lands after
		 * the change) or after it; prefer the one whose DST flag is not
		 * the asked one, as glibc. */
		long long t1 = w - before.off, t2 = w - after.off;
		struct ttype ty1, ty2;
		zone_at(z, t1, &ty1);
		zone_at(z, t2, &ty2);
		t = t1;
		if (want >= 0 && ty1.isdst == want && ty2.isdst != want)
			t = t2;
	}
	zone_at(z, t, &ty);
	if (want >= 0 && ty.isdst != want) {
		const long long stride = 601200, bound = 457243200 / 2 + 601200;
		int done = 0;
		for (long long delta = stride; delta < bound && !done; delta += stride)
			for (int dir = -1; dir <= 1 && !done; dir += 2) {
				struct ttype o;
				zone_at(z, t + dir * delta, &o);
				if (o.isdst == want) {
					t = w - o.off;
					done = 1;
				}
			}
		if (!done)
			t += 3600LL * ((want == 0) - (ty.isdst == 0));
	}
	time_t tt = (time_t)t;
	struct tm out;
	if ((long long)tt != t || !localtime_r(&tt, &out)) {
		errno = EOVERFLOW;
		return (time_t)-1;
	}
	*tm = out;
	return tt;
}

const char *__real___strftime_fmt_1(char (*s)[100], size_t *l, int f, const struct tm *tm, locale_t loc, int pad);

/* One conversion of strftime and wcsftime. Only %z of an offset less than
 * a minute west of UTC (local mean time of some places before 1900) is
 * changed: glibc writes "-0000" there, wasi-libc "+0000". */
const char *__wrap___strftime_fmt_1(char (*s)[100], size_t *l, int f, const struct tm *tm, locale_t loc, int pad) {
	if (f == 'z' && tm->tm_isdst >= 0 && tm->__tm_gmtoff < 0 && tm->__tm_gmtoff > -60) {
		memcpy(*s, "-0000", 6);
		*l = 5;
		return *s;
	}
	return __real___strftime_fmt_1(s, l, f, tm, loc, pad);
}
