/* firstinsn (native): the first thing main does is read CLOCK_MONOTONIC,
 * then it writes the 8-byte timestamp to stdout, like firstinsn.wat. */
#include <time.h>
#include <unistd.h>
#include <stdint.h>

int main(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	return write(1, &ns, sizeof ns) == sizeof ns ? 0 : 1;
}
