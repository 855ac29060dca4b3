# The server dies in the middle of this unit (DEBUG SEGFAULT); the adapter
# must report the unit as an error and go on.
start_server {tags {"compat"}} {
    test {compat before the crash} {
        r ping
    } {PONG}

    test {compat crashes the server} {
        catch {r debug segfault}
        r ping
    } {PONG}

    test {compat after the crash} {
        r ping
    } {PONG}
}
