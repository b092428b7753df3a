/* Takes the address of every function libiocp exports (tests/header.rs checks the list is complete): compiles only if iocp.h declares each, links only if the library defines each. */
#include "iocp.h"
#include <stdio.h>
typedef void (*fnptr)(void);
static const fnptr every_function[] = {
    (fnptr)AcceptEx,
    (fnptr)CancelIo,
    (fnptr)CancelIoEx,
    (fnptr)CloseHandle,
    (fnptr)CreateEventA,
    (fnptr)CreateFileA,
    (fnptr)CreateIoCompletionPort,
    (fnptr)CreateThread,
    (fnptr)FlushFileBuffers,
    (fnptr)GetAcceptExSockaddrs,
    (fnptr)GetExitCodeThread,
    (fnptr)GetFileSizeEx,
    (fnptr)GetLastError,
    (fnptr)GetOverlappedResult,
    (fnptr)GetQueuedCompletionStatus,
    (fnptr)GetQueuedCompletionStatusEx,
    (fnptr)GetTickCount,
    (fnptr)GetTickCount64,
    (fnptr)PostQueuedCompletionStatus,
    (fnptr)ReadFile,
    (fnptr)ResetEvent,
    (fnptr)SetEvent,
    (fnptr)SetFileCompletionNotificationModes,
    (fnptr)SetLastError,
    (fnptr)Sleep,
    (fnptr)WSACleanup,
    (fnptr)WSAGetLastError,
    (fnptr)WSARecv,
    (fnptr)WSASend,
    (fnptr)WSASetLastError,
    (fnptr)WSASocketA,
    (fnptr)WSAStartup,
    (fnptr)WaitForMultipleObjects,
    (fnptr)WaitForSingleObject,
    (fnptr)WriteFile,
    (fnptr)closesocket,
    (fnptr)iocp_accept,
    (fnptr)iocp_bind,
    (fnptr)iocp_connect,
    (fnptr)iocp_getpeername,
    (fnptr)iocp_getsockname,
    (fnptr)iocp_getsockopt,
    (fnptr)iocp_inet_pton,
    (fnptr)iocp_listen,
    (fnptr)iocp_recv,
    (fnptr)iocp_send,
    (fnptr)iocp_setsockopt,
    (fnptr)iocp_shutdown,
    (fnptr)iocp_socket,
};
int main(void) {
    size_t n = sizeof every_function / sizeof every_function[0];
    for (size_t i = 0; i < n; i++) if (!every_function[i]) return 1;
    printf("symbols: %zu functions declared and linked\n", n);
    return 0;
}
