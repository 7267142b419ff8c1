"""pyhttpd: the harness of mod_pushstream's integration tests and benchmark.

    env        paths of the checkout and the build (ROOT, BUILD, the .so files), work_root()
    proc       processes and ports: free_port(), pid_alive(), term_and_wait(), Proc
               (a helper process started, stopped, killed), make_cert()
    httpd      Httpd: a throwaway /usr/sbin/apache2 on 127.0.0.1 (config, start,
               stop, graceful, logs, RSS, MPM counters); the demo of `make run`
               (python3 -m pyhttpd run | stop | configtest FILE)
    conf       the usual mod_pushstream test configuration (conf(), locations)
    client     the one client library: requests, publish/info/wait, Stream,
               EventSource parsing, swarms, curl
    ws         WebSocket frames, Ws and WsSwarm on top of client
    h2client   an HTTP/2 client (python3-h2)
    jwtmint    compact JWS/JWT minting for PushStreamAuth
    wsbackend  WebSocket back ends (a subprocess) for mod_pushstream_wstunnel

Used by test/conftest.py (fixtures of test/modules/) and bench/.
"""
