#!/usr/bin/perl

# compat's own test in the style of nginx-tests: a reload. nginx-tests'
# harness reads nginx.pid whenever it signals nginx (reload(), stop()), and
# dies when the file is missing; a native nginx keeps the file through a
# reload (the master stays). The pid directive is in nginx.conf, where the
# harness's %%TEST_GLOBALS%% puts it. Core Perl only, as compat_smoke.t.

use warnings;
use strict;

use Test::More;
use IO::Socket::INET;
use File::Temp qw/ tempdir /;
use POSIX qw/ WNOHANG /;
use Time::HiRes qw/ sleep time /;

my $NGINX = $ENV{TEST_NGINX_BINARY} or plan(skip_all => 'TEST_NGINX_BINARY not set');

plan(tests => 8);

my $dir = tempdir('nginx-test-XXXXXXXXXX', TMPDIR => 1, CLEANUP => 1);

my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0, ReuseAddr => 1)
	or die "no free port: $!";
my $port = $s->sockport();
close $s;

sub conf {
	my ($body) = @_;
	open my $f, '>', "$dir/nginx.conf" or die;
	print $f <<"EOC";
pid $dir/nginx.pid;
error_log $dir/error.log debug;
daemon off;

events {
}

http {
    access_log $dir/access.log;
    client_body_temp_path $dir/client_body_temp;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;

    server {
        listen       127.0.0.1:$port;
        server_name  localhost;

        location / {
            return 200 "$body\\n";
        }
    }
}
EOC
	close $f;
}

sub get {
	my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Proto => 'tcp')
		or return '';
	print $s "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
	local $/;
	my $r = <$s>;
	return $r // '';
}

sub read_pid {
	open my $f, '<', "$dir/nginx.pid" or return undef;
	my $pid = <$f>;
	return undef unless defined $pid;
	chomp $pid;
	return $pid;
}

conf('first');
my $child = fork();
die "fork: $!" unless defined $child;
if ($child == 0) {
	exec($NGINX, '-p', "$dir/", '-c', 'nginx.conf', '-e', 'error.log')
		or die "Unable to exec(): $!\n";
}
for (1 .. 150) {
	last if -e "$dir/nginx.pid";
	sleep 0.1;
}
like(get(), qr/\r\n\r\nfirst\n\z/, 'serves the first configuration');

# reload(), as the harness does it, with a new configuration; then read
# the pid file as stop() would, again and again, until the new
# configuration answers
conf('second');
kill 'HUP', read_pid();
my ($reads, $missing, $other, $served) = (0, 0, 0, 0);
my $end = time() + 10;
while (time() < $end) {
	my $pid = read_pid();
	$reads++;
	if (!defined $pid) {
		$missing++;
	} elsif ($pid != $child) {
		$other++;
	}
	if ($reads % 20 == 0 && get() =~ /\r\n\r\nsecond\n\z/) {
		$served = 1;
		last;
	}
	sleep 0.005;
}
ok($served, 'serves the new configuration after HUP');
is($missing, 0, 'pid file never missing during the reload');
diag("$missing of $reads reads of nginx.pid found no file") if $missing;
is($other, 0, 'pid file holds the pid that was started');

# stop()
kill 'QUIT', read_pid() // $child;
my $exited = 0;
for (1 .. 150) {
	if (waitpid($child, WNOHANG) == $child) {
		$exited = 1;
		last;
	}
	sleep 0.1;
}
ok($exited, 'QUIT stops nginx');
ok(!-e "$dir/nginx.pid", 'pid file removed on exit');
if (!$exited) {
	kill 'KILL', $child;
	waitpid($child, 0);
}
ok($> != 0, 'runs unprivileged, as nginx-tests wants');

open my $f, '<', "$dir/error.log" or die "error.log: $!";
my @alerts = grep { /\[alert\]/ } <$f>;
close $f;
is(join('', @alerts), '', 'no alerts');
