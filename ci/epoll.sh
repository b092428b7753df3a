#!/usr/bin/env bash
# The whole suite again on the epoll backend (issue 10): every library integration test,
# unit test, doctest and cport CLI test runs with COMPLETION_PORT_BACKEND=epoll, which every
# port made with CompletionPort::new (and every cport subcommand) obeys. Tests meaningful
# for one backend only say so and report what they checked instead. Runnable by hand from
# anywhere in the repository; arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
COMPLETION_PORT_BACKEND=epoll cargo test --workspace "$@"
