# A unit with one of every outcome, for the adapter's tests (copied into a
# scratch copy of the suite as tests/unit/compat_sample.tcl).
start_server {tags {"compat"}} {
    test {compat passes} {
        r set compat:k v
        r get compat:k
    } {v}

    test {compat fails: an assertion} {
        assert_equal {one} [r echo two]
    }

    test {compat fails: a wrong result} {
        r echo three
    } {four}

    test {compat skipped by --skiptest} {
        r ping
    }

    test {compat ignored: a tag} {
        r ping
    } {PONG} {external:skip}

    test {compat passes after the others} {
        r ping
    } {PONG}
}

start_server {tags {"compat external:skip"}} {
    test {compat ignored with its group} {
        r ping
    } {PONG}
}
