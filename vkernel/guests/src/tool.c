/* tool: a small command-line tool of the kind an agent runs many times:
 * reads stdin, counts lines, words and bytes, and prints them with an
 * FNV-1a checksum of the input stretched over ROUNDS passes, so each run
 * does a little real work. Builds for wasm32-wasi and natively. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define ROUNDS 64

int main(int argc, char **argv) {
	static unsigned char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf, stdin);
	long lines = 0, words = 0;
	int inword = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = buf[i];
		if (c == '\n')
			lines++;
		int space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
		if (!space && !inword)
			words++;
		inword = !space;
	}
	uint32_t h = 2166136261u;
	for (int r = 0; r < ROUNDS; r++)
		for (size_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 16777619u;
	printf("%ld %ld %zu %08x\n", lines, words, n, h);
	return 0;
}
