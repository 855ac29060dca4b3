/* tz: local time through tzset, localtime_r, mktime and strftime, for
 * comparing the vkposix library's time zones (images/lib/vkposix,
 * src/time.c) with the host's C library: the same source is built for the
 * guest and natively, run with the same arguments, and the outputs must be
 * equal line for line. Arguments, done in order:
 *
 *   TZ=VALUE       setenv TZ, tzset, print tzname, timezone, daylight
 *   TZ-            unsetenv TZ, the same
 *   at=T           localtime of T (seconds since the epoch) and its round trip through mktime
 *   mk=Y,M,D,h,m,s,isdst   mktime of those fields (M from 1, as written)
 *   scan=Y0,Y1     every change of offset, DST flag or zone name from year Y0 to Y1 (UTC):
 *                  localtime on both sides, mktime of the local times next to the change,
 *                  inside the gap or the fold (isdst 0 and 1 where the DST flag changes), and
 *                  a sample localtime every 97 days
 *
 * mktime of a local time inside a gap or a fold with isdst -1 is left out:
 * glibc's answer there depends on the previous call's offset.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void show_tm(const struct tm *tm) {
	char buf[128];
	if (strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z %z", tm) == 0)
		buf[0] = 0;
	printf("%04d-%02d-%02d %02d:%02d:%02d wday=%d yday=%d isdst=%d gmtoff=%ld zone=%s strf=[%s]",
		tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec,
		tm->tm_wday, tm->tm_yday, tm->tm_isdst, (long)tm->tm_gmtoff,
		tm->tm_zone ? tm->tm_zone : "(null)", buf);
}

static void at(long long t) {
	time_t tt = (time_t)t;
	struct tm tm;
	if (!localtime_r(&tt, &tm)) {
		printf("lt %lld: fail errno=%d\n", t, errno);
		return;
	}
	printf("lt %lld: ", t);
	show_tm(&tm);
	struct tm back = tm;
	back.tm_zone = NULL;
	back.tm_gmtoff = 0;
	printf(" mk=%lld\n", (long long)mktime(&back));
}

static void mk(int y, int mon, int d, int h, int mi, int s, int isdst) {
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	tm.tm_isdst = isdst;
	tm.tm_wday = -7;
	errno = 0;
	time_t t = mktime(&tm);
	printf("mk %d-%d-%d %d:%d:%d isdst=%d -> %lld", y, mon, d, h, mi, s, isdst, (long long)t);
	if (t == (time_t)-1 && tm.tm_wday == -7) {
		printf(" fail\n");
		return;
	}
	printf(" ");
	show_tm(&tm);
	printf("\n");
}

/* mkwall runs mk on the local wall-clock time w (seconds since the epoch as
 * if local time were UTC). */
static void mkwall(long long w, int isdst) {
	time_t tt = (time_t)w;
	struct tm u;
	gmtime_r(&tt, &u);
	mk(u.tm_year + 1900, u.tm_mon + 1, u.tm_mday, u.tm_hour, u.tm_min, u.tm_sec, isdst);
}

struct state {
	long off;
	int isdst;
	char zone[32];
};

static void state_at(long long t, struct state *s) {
	time_t tt = (time_t)t;
	struct tm tm;
	localtime_r(&tt, &tm);
	s->off = tm.tm_gmtoff;
	s->isdst = tm.tm_isdst;
	snprintf(s->zone, sizeof s->zone, "%s", tm.tm_zone ? tm.tm_zone : "");
}

static int same(const struct state *a, const struct state *b) {
	return a->off == b->off && a->isdst == b->isdst && strcmp(a->zone, b->zone) == 0;
}

/* days_from_civil: days since 1970-01-01 of a proleptic Gregorian date. */
static long long days_from_civil(long long y, int m, int d) {
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void scan(int y0, int y1) {
	const long long step = 6 * 3600;
	long long t = days_from_civil(y0, 1, 1) * 86400, end = days_from_civil(y1, 1, 1) * 86400;
	long long next_sample = t;
	struct state prev, cur;
	state_at(t, &prev);
	for (; t < end; t += step) {
		if (t >= next_sample) {
			at(t);
			next_sample += 97LL * 86400;
		}
		state_at(t + step, &cur);
		if (same(&prev, &cur))
			continue;
		/* The first second in (t, t+step] with cur's state. */
		long long lo = t, hi = t + step;
		while (hi - lo > 1) {
			long long mid = lo + (hi - lo) / 2;
			struct state m;
			state_at(mid, &m);
			if (same(&prev, &m))
				lo = mid;
			else
				hi = mid;
		}
		long long T = hi;
		printf("tr %lld\n", T);
		at(T - 1);
		at(T);
		long o1 = prev.off, o2 = cur.off;
		int flips = prev.isdst != cur.isdst;
		long lo_off = o1 < o2 ? o1 : o2, hi_off = o1 < o2 ? o2 : o1;
		/* Unique local times just before and after the gap or fold. */
		long long before = T + lo_off - 1, after = T + hi_off;
		for (int isdst = -1; isdst <= (flips ? 1 : -1); isdst++) {
			mkwall(before, isdst);
			mkwall(after, isdst);
		}
		if (flips && o1 != o2) {
			long long inside = T + lo_off + (hi_off - lo_off) / 2;
			mkwall(inside, 0);
			mkwall(inside, 1);
		}
		prev = cur;
	}
}

static void zone_vars(const char *what) {
	printf("tz %s tzname=%s,%s timezone=%ld daylight=%d\n", what, tzname[0], tzname[1], (long)timezone,
		daylight);
}

int main(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		long long t;
		int y0, y1, f[7];
		if (strncmp(a, "TZ=", 3) == 0) {
			setenv("TZ", a + 3, 1);
			tzset();
			zone_vars(a);
		} else if (strcmp(a, "TZ-") == 0) {
			unsetenv("TZ");
			tzset();
			zone_vars(a);
		} else if (sscanf(a, "at=%lld", &t) == 1) {
			at(t);
		} else if (sscanf(a, "mk=%d,%d,%d,%d,%d,%d,%d", &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6]) == 7) {
			mk(f[0], f[1], f[2], f[3], f[4], f[5], f[6]);
		} else if (sscanf(a, "scan=%d,%d", &y0, &y1) == 2) {
			scan(y0, y1);
		} else {
			fprintf(stderr, "tz: bad argument %s\n", a);
			return 2;
		}
	}
	return 0;
}
