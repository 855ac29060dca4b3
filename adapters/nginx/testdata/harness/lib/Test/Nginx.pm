package Test::Nginx;

# compat's stand-in, not upstream's module: an nginx-tests checkout has
# lib/Test/Nginx.pm, and compat checks for it before it runs a directory as
# one (nginx.New). The fixture .t files beside it drive TEST_NGINX_BINARY
# themselves, in core Perl, and do not load this file.

use warnings;
use strict;

1;
