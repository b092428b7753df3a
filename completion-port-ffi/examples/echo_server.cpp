// The seed "IOCP를 이용한 NetworkSystem Example" (a TCP server that receives through a
// completion port), ported to libiocp and finished as an echo server.
//
// The seed accepted with a blocking accept() on the main thread and freed each connection
// after its first receive. This version does what the seed's text describes ("the client's
// connection and its data are both handled asynchronously"): connections are accepted with
// AcceptEx, received with WSARecv and echoed with WSASend, all completing on the port; two
// worker threads (concurrency 2) take the completions.
//
// Corrections to the seed: a missing comma in CreateThread's arguments and two missing
// semicolons; sockets are SOCKET, not int; the key is a ULONG_PTR and the byte count a
// DWORD; GetQueuedCompletionStatus's result is checked (a failed receive and a peer's
// graceful close, 0 bytes, both end the connection); new[] is freed with delete[]; the
// per-operation event was never used (the port delivers the completion) and is dropped.
//
// Usage: echo_server [port, default 4000; 0 picks one] [connections to serve, default 0 =
// forever]. It prints "listening on 127.0.0.1:PORT", and exits 0 after serving the given
// number of connections.
#define WIN32_LEAN_AND_MEAN
#include <stdio.h>
#include <stdlib.h>
#include <Windows.h>
#include <WinSock2.h>
#include <mswsock.h>
#pragma comment(lib, "ws2_32.lib")  // as in the seed: ignored here (see include/compat)

enum Op { OP_ACCEPT, OP_RECV, OP_SEND };

#define ADDR_LEN (sizeof(SOCKADDR_IN) + 16)
#define LISTEN_KEY ((ULONG_PTR)1)
#define SHUTDOWN_KEY ((ULONG_PTR)0)

struct OVERLAPPED_PLUS : public OVERLAPPED {
    Op op;
    SOCKET sock;    // the connection (for an accept: the socket being accepted into)
    WSABUF wsaBuf;  // buffer
    char buf[1024];
    char addrs[2 * ADDR_LEN];
};

static SOCKET listen_sock;
static HANDLE hDone;
static long max_connections;
static volatile LONG accepted, closed;

static OVERLAPPED_PLUS *NewOp(Op op, SOCKET s) {
    OVERLAPPED_PLUS *o = new OVERLAPPED_PLUS;
    memset(static_cast<OVERLAPPED *>(o), 0, sizeof(OVERLAPPED));
    o->op = op;
    o->sock = s;
    o->wsaBuf.buf = o->buf;
    o->wsaBuf.len = sizeof o->buf;
    return o;
}

static bool PostAccept() {
    SOCKET s = WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
    if (s == INVALID_SOCKET) return false;
    OVERLAPPED_PLUS *op = NewOp(OP_ACCEPT, s);
    DWORD bytes = 0;
    if (!AcceptEx(listen_sock, s, op->addrs, 0, ADDR_LEN, ADDR_LEN, &bytes, op) && GetLastError() != ERROR_IO_PENDING) {
        printf("AcceptEx failed: %lu\n", (unsigned long)GetLastError());
        closesocket(s);
        delete op;
        return false;
    }
    return true;
}

static bool PostRecv(OVERLAPPED_PLUS *op) {
    DWORD flags = 0, recvBytes = 0;
    memset(static_cast<OVERLAPPED *>(op), 0, sizeof(OVERLAPPED));
    op->op = OP_RECV;
    op->wsaBuf.buf = op->buf;
    op->wsaBuf.len = sizeof op->buf;
    int n = WSARecv(op->sock, &op->wsaBuf, 1, &recvBytes, &flags, op, NULL);
    return n == 0 || WSAGetLastError() == WSA_IO_PENDING;
}

static void Close(OVERLAPPED_PLUS *op) {
    closesocket(op->sock);
    delete op;
    if (InterlockedIncrement(&closed) == max_connections) SetEvent(hDone);
}

DWORD __stdcall EchoThread(void *p) {
    HANDLE hPort = (HANDLE)p;
    for (;;) {
        LPOVERLAPPED pov = NULL;
        DWORD bytes = 0;
        ULONG_PTR key = 0;
        BOOL ok = GetQueuedCompletionStatus(hPort, &bytes, &key, &pov, INFINITE);
        if (pov == NULL) {
            if (ok && key == SHUTDOWN_KEY) break;  // one shutdown packet per worker
            if (!ok) break;                        // the port was closed
            continue;
        }
        OVERLAPPED_PLUS *op = static_cast<OVERLAPPED_PLUS *>(pov);
        switch (op->op) {
        case OP_ACCEPT: {
            if (!ok) {  // the listener was closed
                closesocket(op->sock);
                delete op;
                break;
            }
            setsockopt(op->sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (char *)&listen_sock, sizeof listen_sock);
            SOCKADDR *local, *remote;
            int local_len, remote_len;
            GetAcceptExSockaddrs(op->addrs, 0, ADDR_LEN, ADDR_LEN, &local, &local_len, &remote, &remote_len);
            SOCKADDR_IN *peer = (SOCKADDR_IN *)remote;
            printf("client connected from port %u\n", ntohs(peer->sin_port));
            CreateIoCompletionPort((HANDLE)op->sock, hPort, (ULONG_PTR)op->sock, 0);
            long n = InterlockedIncrement(&accepted);
            if (max_connections == 0 || n < max_connections) PostAccept();
            if (!PostRecv(op)) Close(op);
            break;
        }
        case OP_RECV:
            if (!ok || bytes == 0) {  // failed (reset...) or closed gracefully by the peer
                Close(op);
                break;
            }
            op->op = OP_SEND;
            op->wsaBuf.len = bytes;
            memset(static_cast<OVERLAPPED *>(op), 0, sizeof(OVERLAPPED));
            if (WSASend(op->sock, &op->wsaBuf, 1, NULL, 0, op, NULL) != 0 && WSAGetLastError() != WSA_IO_PENDING)
                Close(op);
            break;
        case OP_SEND:
            if (!ok || !PostRecv(op)) Close(op);
            break;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    int portno = argc > 1 ? atoi(argv[1]) : 4000;
    max_connections = argc > 2 ? atol(argv[2]) : 0;
    WSADATA w;
    if (WSAStartup(MAKEWORD(2, 2), &w) != 0) return 1;

    // 1. The completion port.
    HANDLE hPort = CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 2);
    hDone = CreateEvent(NULL, TRUE, FALSE, NULL);

    SYSTEM_INFO si;
    GetSystemInfo(&si);
    printf("%lu processors; 2 workers, concurrency 2\n", (unsigned long)si.dwNumberOfProcessors);

    // 2. Threads that wait on the port.
    HANDLE h[2];
    h[0] = CreateThread(0, 0, EchoThread, (void *)hPort, 0, 0);
    h[1] = CreateThread(0, 0, EchoThread, (void *)hPort, 0, 0);

    // The listening socket, associated with the port for AcceptEx.
    listen_sock = WSASocket(PF_INET, SOCK_STREAM, 0, 0, 0, WSA_FLAG_OVERLAPPED);
    SOCKADDR_IN addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((USHORT)portno);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_sock, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listen_sock, SOMAXCONN) != 0) {
        printf("bind/listen failed: %d\n", WSAGetLastError());
        return 1;
    }
    int len = sizeof addr;
    getsockname(listen_sock, (struct sockaddr *)&addr, &len);
    CreateIoCompletionPort((HANDLE)listen_sock, hPort, LISTEN_KEY, 0);
    printf("listening on 127.0.0.1:%u\n", ntohs(addr.sin_port));
    fflush(stdout);

    PostAccept();
    WaitForSingleObject(hDone, INFINITE);

    PostQueuedCompletionStatus(hPort, 0, SHUTDOWN_KEY, NULL);
    PostQueuedCompletionStatus(hPort, 0, SHUTDOWN_KEY, NULL);
    WaitForMultipleObjects(2, h, TRUE, INFINITE);
    CloseHandle(h[0]);
    CloseHandle(h[1]);
    closesocket(listen_sock);
    CloseHandle(hPort);
    CloseHandle(hDone);
    WSACleanup();
    printf("served %ld connections\n", (long)closed);
    return 0;
}
