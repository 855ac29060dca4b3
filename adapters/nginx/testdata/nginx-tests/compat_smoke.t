#!/usr/bin/perl

# compat's own test in the style of nginx-tests (upstream's suite, which is
# not packaged and so not here): it drives $TEST_NGINX_BINARY exactly as
# nginx-tests' lib/Test/Nginx.pm does, with core Perl only:
#
#   - a temporary directory holds nginx.conf, with %%TEST_GLOBALS%%,
#     %%TEST_GLOBALS_HTTP%% (logs and temp paths in that directory) and a
#     port picked from free loopback ports (port(8080));
#   - nginx runs as "$NGINX -p DIR/ -c nginx.conf -e error.log -g 'pid
#     DIR/nginx.pid; error_log DIR/error.log debug;'" in a forked child
#     ("daemon off"), and the harness waits for the pid file;
#   - it is stopped with "kill QUIT" on the pid in the pid file, and must
#     exit by itself;
#   - every file ends with a "no alerts" check of error.log.

use warnings;
use strict;

use Test::More;
use IO::Socket::INET;
use File::Temp qw/ tempdir /;
use POSIX qw/ WNOHANG /;
use Time::HiRes qw/ sleep /;

my $NGINX = $ENV{TEST_NGINX_BINARY} or plan(skip_all => 'TEST_NGINX_BINARY not set');

plan(tests => 9);

my $dir = tempdir('nginx-test-XXXXXXXXXX', TMPDIR => 1, CLEANUP => 1);

sub port {
	my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0, ReuseAddr => 1)
		or die "no free port: $!";
	my $p = $s->sockport();
	close $s;
	return $p;
}
my $port = port();

mkdir "$dir/html" or die;
open my $f, '>', "$dir/html/index.html" or die;
print $f "compat nginx-tests\n";
close $f;

my $conf = <<'EOC';

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location / {
            root %%TESTDIR%%/html;
        }
        location /addr {
            return 200 "$remote_addr\n";
        }
        location ~ ^/re/(\d+)$ {
            return 200 "regex $1\n";
        }
    }
}

EOC
# What nginx-tests' test_globals_http() puts there: logs and every temp
# path in the test's directory (the compiled-in ones need root).
my $globals_http = join("\n    ",
	"access_log %%TESTDIR%%/access.log;",
	map { "${_}_temp_path %%TESTDIR%%/${_}_temp;" } qw/client_body proxy fastcgi uwsgi scgi/);
$conf =~ s/%%TEST_GLOBALS_HTTP%%/$globals_http/g;
$conf =~ s/%%TEST_GLOBALS%%//g;
$conf =~ s/%%TESTDIR%%/$dir/g;
$conf =~ s/%%PORT_8080%%/$port/g;
open $f, '>', "$dir/nginx.conf" or die;
print $f $conf;
close $f;

# run()
my $child = fork();
die "fork: $!" unless defined $child;
if ($child == 0) {
	exec($NGINX, '-p', "$dir/", '-c', 'nginx.conf', '-e', 'error.log',
		'-g', "pid $dir/nginx.pid; error_log $dir/error.log debug;")
		or die "Unable to exec(): $!\n";
}
for (1 .. 150) {
	last if -e "$dir/nginx.pid";
	sleep 0.1;
}
ok(-e "$dir/nginx.pid", 'pid file written');

sub http_get {
	my ($uri) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Proto => 'tcp')
		or return '';
	print $s "GET $uri HTTP/1.0\r\nHost: localhost\r\n\r\n";
	local $/;
	my $r = <$s>;
	close $s;
	return $r // '';
}

like(http_get('/'), qr/^HTTP\/1\.1 200 .*\r\n\r\ncompat nginx-tests\n\z/s, 'static file');
like(http_get('/addr'), qr/\r\n\r\n127\.0\.0\.1\n\z/, 'remote_addr');
like(http_get('/re/42'), qr/\r\n\r\nregex 42\n\z/, 'regex location');
like(http_get('/missing'), qr/^HTTP\/1\.1 404 /, 'not found');

# stop()
open $f, '<', "$dir/nginx.pid" or die "pid file: $!";
my $pid = <$f>;
close $f;
chomp $pid;
is($pid, $child, 'pid file holds the pid that was started');
kill 'QUIT', $pid;
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

# the "no alerts" check nginx-tests adds to every file
open $f, '<', "$dir/error.log" or die "error.log: $!";
my @alerts = grep { /\[alert\]/ } <$f>;
close $f;
is(join('', @alerts), '', 'no alerts');
