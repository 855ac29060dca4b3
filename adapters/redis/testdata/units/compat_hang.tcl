# The server stops answering in this unit (DEBUG SLEEP); the adapter's unit
# timeout must end it.
start_server {tags {"compat"}} {
    test {compat before the hang} {
        r ping
    } {PONG}

    test {compat hangs the server} {
        r debug sleep 3600
    } {OK}
}
