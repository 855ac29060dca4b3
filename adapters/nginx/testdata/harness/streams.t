#!/usr/bin/perl

# compat's fixture: a test file that reports some results, one of them a
# failure, then leaves what a harness that never reaches its stop() leaves
# (a daemon in a session of its own holding stdout, a temporary directory)
# and hangs. A unit killed by its timeout must keep the three results and
# leave nothing behind. $FIXTURE_RECORD, if set, gets "pid N" and "dir D"
# lines for the test to check.

use warnings;
use strict;

use Test::More;
use File::Temp qw/ tempdir /;
use POSIX qw/ setsid /;

sub record {
	return unless $ENV{FIXTURE_RECORD};
	open my $f, '>>', $ENV{FIXTURE_RECORD} or die "record: $!";
	print $f "@_\n";
	close $f;
}

plan(tests => 5);

ok(1, 'first');
ok(1, 'second');
is('500', '200', 'status');

my $dir = tempdir('nginx-test-XXXXXXXXXX', TMPDIR => 1);
record("dir $dir");

my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0) {
	setsid();
	sleep 600;
	exit 0;
}
record("pid $pid");
record("pid $$");

sleep 600;
ok(1, 'never reached');
ok(1, 'never reached either');
