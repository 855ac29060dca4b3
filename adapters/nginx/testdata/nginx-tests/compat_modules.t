#!/usr/bin/perl

# compat's own test in the style of nginx-tests: the dynamic modules. When
# "nginx -V" lists a module as "--with-X=dynamic", nginx-tests' harness
# writes "load_module $TEST_NGINX_MODULES/FILE.so;" into every
# configuration (the directory defaults to the binary's own). This file
# writes the same lines for the modules it knows and checks that nginx
# starts its configuration check with them: without the right
# TEST_NGINX_MODULES no nginx-tests file could start nginx. nginx.wasm has
# its modules built in and lists none.

use warnings;
use strict;

use Test::More;
use File::Basename qw/ dirname /;
use File::Temp qw/ tempdir /;

my $NGINX = $ENV{TEST_NGINX_BINARY} or plan(skip_all => 'TEST_NGINX_BINARY not set');

plan(tests => 3);

my %file = (
	http_geoip_module => 'ngx_http_geoip_module',
	http_image_filter_module => 'ngx_http_image_filter_module',
	http_perl_module => 'ngx_http_perl_module',
	http_xslt_module => 'ngx_http_xslt_filter_module',
	mail => 'ngx_mail_module',
	stream => 'ngx_stream_module',
	stream_geoip_module => 'ngx_stream_geoip_module',
);

my $v = `$NGINX -V 2>&1`;
like($v, qr/configure arguments:/, 'nginx -V');
my @load = map { $file{$_} } grep { $file{$_} } ($v =~ /--with-(\w+)=dynamic/g);
my $modules = $ENV{TEST_NGINX_MODULES} // dirname($NGINX);

my @missing = grep { !-f "$modules/$_.so" } @load;
is(join(' ', @missing), '', 'every dynamic module is in TEST_NGINX_MODULES');

my $dir = tempdir('nginx-test-XXXXXXXXXX', TMPDIR => 1, CLEANUP => 1);
open my $f, '>', "$dir/nginx.conf" or die;
print $f map { "load_module $modules/$_.so;\n" } @load;
print $f "events {\n}\n";
close $f;
my $out = `$NGINX -t -p $dir/ -c nginx.conf -e error.log -g "pid $dir/nginx.pid; error_log $dir/error.log;" 2>&1`;
is($?, 0, 'nginx -t loads them') or diag($out);
