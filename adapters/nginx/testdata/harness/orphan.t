#!/usr/bin/perl

# compat's fixture: a test file that runs to its end but leaves a process
# behind that holds its stdout (as an nginx the harness failed to stop
# does). prove would wait for it forever; the unit must end with the
# file, with every result, and the process must be gone.

use warnings;
use strict;

use Test::More;
use POSIX qw/ setsid /;

plan(tests => 2);

my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0) {
	setsid();
	sleep 600;
	exit 0;
}
if ($ENV{FIXTURE_RECORD}) {
	open my $f, '>>', $ENV{FIXTURE_RECORD} or die "record: $!";
	print $f "pid $pid\n";
	close $f;
}

ok(1, 'first');
ok($> != 0, 'runs unprivileged');
