/* Sockets: WSAStartup, the BSD calls with Winsock's signatures, AcceptEx (with and without
 * a first data block) and GetAcceptExSockaddrs, WSARecv scattering over WSABUFs, WSASend,
 * graceful close (TRUE, 0 bytes), reset (ERROR_NETNAME_DELETED), cancel and local close
 * (ERROR_OPERATION_ABORTED), CancelIoEx with nothing pending (ERROR_NOT_FOUND), bad
 * sockets (WSAENOTSOCK). 127.0.0.1 only. */
#include "check.h"

#define ADDR_LEN (sizeof(struct sockaddr_in6) + 16)

static HANDLE port;
static struct sockaddr_in where;

static DWORD WINAPI blocked_accept(LPVOID arg) {
    SOCKET l = (SOCKET)arg;
    SOCKET s = accept(l, NULL, NULL);
    return s == INVALID_SOCKET ? (DWORD)WSAGetLastError() : 0;
}

static SOCKET connect_client(void) {
    SOCKET c = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    CHECK(c != INVALID_SOCKET);
    CHECK(connect(c, (struct sockaddr *)&where, sizeof where) == 0);
    return c;
}

/* The large gathered send's bytes: segment i, byte j. */
#define BIG_SEG (1 << 17)
static char big_byte(size_t p) { return (char)((p % BIG_SEG) * 7 + p / BIG_SEG); }

/* Reads 3 * BIG_SEG bytes from the client and checks each: 0 if all are right. */
static DWORD WINAPI drain_big(LPVOID arg) {
    SOCKET c = (SOCKET)arg;
    static char chunk[65536];
    size_t at = 0;
    while (at < 3 * (size_t)BIG_SEG) {
        int n = recv(c, chunk, sizeof chunk, 0);
        if (n <= 0)
            return 1;
        for (int i = 0; i < n; i++)
            if (chunk[i] != big_byte(at + (size_t)i))
                return 2;
        at += (size_t)n;
    }
    return 0;
}

/* After 100 ms, sends "late" on the socket. */
static DWORD WINAPI delayed_send(LPVOID arg) {
    Sleep(100);
    return send((SOCKET)arg, "late", 4, 0) == 4 ? 0 : 1;
}

static SOCKET late_client = INVALID_SOCKET;

/* After 100 ms, connects a client to the listener. */
static DWORD WINAPI delayed_connect(LPVOID arg) {
    (void)arg;
    Sleep(100);
    late_client = connect_client();
    return 0;
}

/* One completion, expected to be for `ov`. Returns GQCS's result; *bytes set. */
static BOOL next(LPOVERLAPPED ov, ULONG_PTR want_key, DWORD *bytes) {
    ULONG_PTR key = 0;
    LPOVERLAPPED got = NULL;
    BOOL r = GetQueuedCompletionStatus(port, bytes, &key, &got, 5000);
    DWORD e = GetLastError();
    CHECK(got == ov && key == want_key);
    SetLastError(e);
    return r;
}

/* Accepts a connection through AcceptEx; returns the accepted socket, associated under key. */
static SOCKET accept_ex(SOCKET listener, SOCKET *client, ULONG_PTR key) {
    static char buf[2 * ADDR_LEN];
    OVERLAPPED ov;
    DWORD bytes;
    memset(&ov, 0, sizeof ov);
    SOCKET s = WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
    CHECK(s != INVALID_SOCKET);
    CHECK_FAILS_WITH(AcceptEx(listener, s, buf, 0, ADDR_LEN, ADDR_LEN, &bytes, &ov), ERROR_IO_PENDING);
    CHECK(!HasOverlappedIoCompleted(&ov));
    *client = connect_client();
    CHECK(next(&ov, 1, &bytes) && bytes == 0);
    CHECK(setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (char *)&listener, sizeof listener) == 0);
    CHECK(CreateIoCompletionPort((HANDLE)s, port, key, 0) == port);
    return s;
}

int main(void) {
    WSADATA wsa;
    DWORD bytes, flags = 0;
    CHECK(socket(AF_INET, SOCK_STREAM, 0) == INVALID_SOCKET && WSAGetLastError() == WSANOTINITIALISED);
    CHECK(WSAStartup(MAKEWORD(2, 2), &wsa) == 0 && wsa.wVersion == MAKEWORD(2, 2));

    SOCKET listener = WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
    CHECK(listener != INVALID_SOCKET);
    BOOL on = TRUE;
    CHECK(setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, (char *)&on, sizeof on) == 0);
    CHECK(setsockopt(listener, SOL_SOCKET, 0x4242, (char *)&on, sizeof on) == SOCKET_ERROR &&
          WSAGetLastError() == WSAENOPROTOOPT);
    memset(&where, 0, sizeof where);
    where.sin_family = AF_INET;
    where.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    where.sin_port = 0;
    CHECK(bind(listener, (struct sockaddr *)&where, sizeof where) == 0);
    CHECK(listen(listener, SOMAXCONN) == 0);
    int len = sizeof where; /* the Windows idiom: int length, sockaddr cast */
    CHECK(getsockname(listener, (struct sockaddr *)&where, &len) == 0 && len == sizeof where);
    CHECK(where.sin_family == AF_INET && where.sin_port != 0);

    port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0);
    CHECK(CreateIoCompletionPort((HANDLE)listener, port, 1, 0) == port);

    /* AcceptEx, then the addresses. */
    SOCKET client;
    static char abuf[2 * ADDR_LEN];
    OVERLAPPED aov;
    memset(&aov, 0, sizeof aov);
    SOCKET s = WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
    CHECK_FAILS_WITH(AcceptEx(listener, s, abuf, 0, ADDR_LEN, ADDR_LEN, &bytes, &aov), ERROR_IO_PENDING);
    client = connect_client();
    CHECK(next(&aov, 1, &bytes) && bytes == 0 && aov.Internal == 0);
    struct sockaddr *local, *remote;
    int local_len, remote_len;
    GetAcceptExSockaddrs(abuf, 0, ADDR_LEN, ADDR_LEN, &local, &local_len, &remote, &remote_len);
    CHECK(local_len == sizeof(struct sockaddr_in) && remote_len == sizeof(struct sockaddr_in));
    CHECK(((struct sockaddr_in *)local)->sin_port == where.sin_port);
    CHECK(((struct sockaddr_in *)remote)->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    struct sockaddr_in peer;
    len = sizeof peer;
    CHECK(getpeername(s, (struct sockaddr *)&peer, &len) == 0 && peer.sin_port == ((struct sockaddr_in *)remote)->sin_port);
    CHECK(CreateIoCompletionPort((HANDLE)s, port, 2, 0) == port);

    /* WSARecv scatters over two buffers. */
    char b1[4], b2[16];
    memset(b1, 0, sizeof b1);
    memset(b2, 0, sizeof b2);
    WSABUF bufs[2] = {{sizeof b1, b1}, {sizeof b2, b2}};
    OVERLAPPED rov;
    memset(&rov, 0, sizeof rov);
    CHECK(WSARecv(s, bufs, 2, NULL, &flags, &rov, NULL) == SOCKET_ERROR && WSAGetLastError() == WSA_IO_PENDING);
    CHECK(send(client, "hello world", 11, 0) == 11);
    CHECK(next(&rov, 2, &bytes) && bytes == 11);
    CHECK(memcmp(b1, "hell", 4) == 0 && memcmp(b2, "o world", 7) == 0 && rov.InternalHigh == 11);

    /* WSASend gathers; the client reads it back. */
    WSABUF out[2] = {{4, (char *)"po"}, {2, (char *)"ng"}};
    out[0].len = 2;
    OVERLAPPED sov;
    memset(&sov, 0, sizeof sov);
    int r = WSASend(s, out, 2, NULL, 0, &sov, NULL);
    CHECK(r == 0 || WSAGetLastError() == WSA_IO_PENDING);
    CHECK(next(&sov, 2, &bytes) && bytes == 4);
    char got[8];
    CHECK(recv(client, got, sizeof got, 0) == 4 && memcmp(got, "pong", 4) == 0);

    /* A large gathered send from the caller's memory (three 128 KiB WSABUFs, a small send
     * buffer): the packet comes once all of it is sent, however many partial sends the
     * kernel made of it, and the bytes arrive in order. */
    {
        int small = 16384;
        CHECK(setsockopt(s, SOL_SOCKET, SO_SNDBUF, (char *)&small, sizeof small) == 0);
        WSABUF big[3];
        for (int i = 0; i < 3; i++) {
            big[i].len = BIG_SEG;
            big[i].buf = (char *)malloc(BIG_SEG);
            CHECK(big[i].buf != NULL);
            for (size_t j = 0; j < BIG_SEG; j++)
                big[i].buf[j] = big_byte((size_t)i * BIG_SEG + j);
        }
        HANDLE reader = CreateThread(NULL, 0, drain_big, (LPVOID)client, 0, NULL);
        CHECK(reader != NULL);
        memset(&sov, 0, sizeof sov);
        r = WSASend(s, big, 3, NULL, 0, &sov, NULL);
        CHECK(r == 0 || WSAGetLastError() == WSA_IO_PENDING);
        CHECK(next(&sov, 2, &bytes) && bytes == 3 * BIG_SEG && sov.InternalHigh == 3 * BIG_SEG);
        CHECK(WaitForSingleObject(reader, 10000) == WAIT_OBJECT_0);
        DWORD code = 99;
        CHECK(GetExitCodeThread(reader, &code) && code == 0);
        CHECK(CloseHandle(reader));
        for (int i = 0; i < 3; i++)
            free(big[i].buf);
    }

    /* The synchronous calls block on associated sockets too, as Winsock's do (the epoll
     * backend makes them O_NONBLOCK underneath: the shim waits for readiness). */
    {
        HANDLE t = CreateThread(NULL, 0, delayed_send, (LPVOID)client, 0, NULL);
        char late[8];
        CHECK(recv(s, late, sizeof late, 0) == 4 && memcmp(late, "late", 4) == 0);
        CHECK(WaitForSingleObject(t, 5000) == WAIT_OBJECT_0 && CloseHandle(t));
        t = CreateThread(NULL, 0, delayed_connect, NULL, 0, NULL);
        SOCKET a = accept(listener, NULL, NULL);
        CHECK(a != INVALID_SOCKET);
        CHECK(WaitForSingleObject(t, 5000) == WAIT_OBJECT_0 && CloseHandle(t));
        CHECK(send(a, "x", 1, 0) == 1 && recv(late_client, late, 1, 0) == 1 && late[0] == 'x');
        CHECK(closesocket(a) == 0 && closesocket(late_client) == 0);
    }

    /* Cancel: the receive completes with ERROR_OPERATION_ABORTED; then nothing is pending. */
    memset(&rov, 0, sizeof rov);
    CHECK(WSARecv(s, bufs, 2, NULL, &flags, &rov, NULL) == SOCKET_ERROR && WSAGetLastError() == WSA_IO_PENDING);
    CHECK(CancelIoEx((HANDLE)s, &rov));
    CHECK(!next(&rov, 2, &bytes) && GetLastError() == ERROR_OPERATION_ABORTED && bytes == 0);
    CHECK(rov.Internal == STATUS_CANCELLED);
    CHECK_FAILS_WITH(CancelIoEx((HANDLE)s, &rov), ERROR_NOT_FOUND);
    CHECK_FAILS_WITH(CancelIoEx((HANDLE)s, NULL), ERROR_NOT_FOUND);
    CHECK_FAILS_WITH(GetOverlappedResult((HANDLE)s, &rov, &bytes, FALSE), ERROR_OPERATION_ABORTED);

    /* Graceful close by the peer: TRUE with 0 bytes. */
    memset(&rov, 0, sizeof rov);
    CHECK(WSARecv(s, bufs, 2, NULL, &flags, &rov, NULL) == SOCKET_ERROR && WSAGetLastError() == WSA_IO_PENDING);
    CHECK(shutdown(client, SD_SEND) == 0);
    CHECK(next(&rov, 2, &bytes) && bytes == 0);
    CHECK(closesocket(client) == 0);
    CHECK(closesocket(s) == 0);

    /* Reset by the peer: it closes with data unread, the kernel sends RST. */
    SOCKET s2 = accept_ex(listener, &client, 3);
    CHECK(send(s2, "unread", 6, 0) == 6);
    Sleep(50);
    memset(&rov, 0, sizeof rov);
    CHECK(WSARecv(s2, bufs, 2, NULL, &flags, &rov, NULL) == SOCKET_ERROR && WSAGetLastError() == WSA_IO_PENDING);
    CHECK(closesocket(client) == 0);
    CHECK(!next(&rov, 3, &bytes) && GetLastError() == ERROR_NETNAME_DELETED);
    CHECK(closesocket(s2) == 0);

    /* Local close with a receive pending: ERROR_OPERATION_ABORTED. */
    SOCKET s3 = accept_ex(listener, &client, 4);
    memset(&rov, 0, sizeof rov);
    CHECK(WSARecv(s3, bufs, 2, NULL, &flags, &rov, NULL) == SOCKET_ERROR && WSAGetLastError() == WSA_IO_PENDING);
    CHECK(closesocket(s3) == 0);
    CHECK(!next(&rov, 4, &bytes) && GetLastError() == ERROR_OPERATION_ABORTED);
    CHECK(closesocket(client) == 0);

    /* AcceptEx with a first data block: the packet comes with the data. */
    static char dbuf[16 + 2 * ADDR_LEN];
    memset(&aov, 0, sizeof aov);
    SOCKET s4 = WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
    CHECK_FAILS_WITH(AcceptEx(listener, s4, dbuf, 16, ADDR_LEN, ADDR_LEN, &bytes, &aov), ERROR_IO_PENDING);
    client = connect_client();
    CHECK(send(client, "first", 5, 0) == 5);
    CHECK(next(&aov, 1, &bytes) && bytes == 5 && memcmp(dbuf, "first", 5) == 0);
    GetAcceptExSockaddrs(dbuf, 16, ADDR_LEN, ADDR_LEN, &local, &local_len, &remote, &remote_len);
    CHECK(remote_len == sizeof(struct sockaddr_in) && ((struct sockaddr_in *)remote)->sin_family == AF_INET);
    /* The accept socket is the connection: a synchronous receive on it works. */
    CHECK(send(client, "x", 1, 0) == 1);
    CHECK(recv(s4, got, sizeof got, 0) == 1 && got[0] == 'x');
    CHECK(closesocket(s4) == 0 && closesocket(client) == 0);

    /* FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: what completes at once returns success and
     * queues no packet; what cannot pends and completes with a packet as usual. */
    SOCKET s6 = accept_ex(listener, &client, 8);
    CHECK_FAILS_WITH(SetFileCompletionNotificationModes((HANDLE)s6, 0x80), ERROR_INVALID_PARAMETER);
    CHECK(SetFileCompletionNotificationModes((HANDLE)s6, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS));
    WSABUF five = {5, (char *)"quick"};
    DWORD sent = 0;
    memset(&sov, 0, sizeof sov);
    CHECK(WSASend(s6, &five, 1, &sent, 0, &sov, NULL) == 0 && sent == 5 && HasOverlappedIoCompleted(&sov));
    CHECK(sov.InternalHigh == 5);
    CHECK(recv(client, got, sizeof got, 0) == 5 && memcmp(got, "quick", 5) == 0);
    CHECK(send(client, "abc", 3, 0) == 3);
    Sleep(50);
    DWORD recvd = 0;
    memset(&rov, 0, sizeof rov);
    CHECK(WSARecv(s6, bufs, 2, &recvd, &flags, &rov, NULL) == 0 && recvd == 3 && memcmp(b1, "abc", 3) == 0);
    {
        ULONG_PTR k;
        LPOVERLAPPED o;
        CHECK_FAILS_WITH(GetQueuedCompletionStatus(port, &bytes, &k, &o, 0), WAIT_TIMEOUT); /* no packets */
    }
    memset(&rov, 0, sizeof rov);
    CHECK(WSARecv(s6, bufs, 2, &recvd, &flags, &rov, NULL) == SOCKET_ERROR && WSAGetLastError() == WSA_IO_PENDING);
    CHECK(send(client, "later", 5, 0) == 5);
    CHECK(next(&rov, 8, &bytes) && bytes == 5);
    CHECK(closesocket(s6) == 0 && closesocket(client) == 0);

    /* Without skip-on-success, a call that completes at once returns success with its byte
     * count (the OVERLAPPED already complete) and its packet still comes, as on Windows; or
     * it pends (WSA_IO_PENDING), which Windows also allows. Which one depends on the
     * backend: epoll tries the call at once, io_uring hands it to the ring with the
     * worker's next wait (docs/porting.md). Either way exactly one packet comes, with the
     * byte count and the data. */
    SOCKET s12 = accept_ex(listener, &client, 21);
    sent = 0;
    memset(&sov, 0, sizeof sov);
    int r12 = WSASend(s12, &five, 1, &sent, 0, &sov, NULL);
    if (r12 == 0)
        CHECK(sent == 5 && HasOverlappedIoCompleted(&sov));
    else
        CHECK(r12 == SOCKET_ERROR && WSAGetLastError() == WSA_IO_PENDING);
    CHECK(next(&sov, 21, &bytes) && bytes == 5);
    CHECK(recv(client, got, sizeof got, 0) == 5 && memcmp(got, "quick", 5) == 0);
    CHECK(send(client, "xyz", 3, 0) == 3);
    Sleep(50);
    recvd = 0;
    memset(&rov, 0, sizeof rov);
    r12 = WSARecv(s12, bufs, 2, &recvd, &flags, &rov, NULL);
    if (r12 == 0)
        CHECK(recvd == 3 && HasOverlappedIoCompleted(&rov));
    else
        CHECK(r12 == SOCKET_ERROR && WSAGetLastError() == WSA_IO_PENDING);
    CHECK(next(&rov, 21, &bytes) && bytes == 3 && memcmp(b1, "xyz", 3) == 0);
    {
        ULONG_PTR k;
        LPOVERLAPPED o;
        CHECK_FAILS_WITH(GetQueuedCompletionStatus(port, &bytes, &k, &o, 0), WAIT_TIMEOUT); /* one each */
    }
    CHECK(closesocket(s12) == 0 && closesocket(client) == 0);

    /* A zero-byte receive completes (TRUE, 0 bytes) once data is there, consuming none. */
    SOCKET s9 = accept_ex(listener, &client, 11);
    WSABUF zero = {0, NULL};
    memset(&rov, 0, sizeof rov);
    CHECK(WSARecv(s9, &zero, 1, NULL, &flags, &rov, NULL) == SOCKET_ERROR && WSAGetLastError() == WSA_IO_PENDING);
    CHECK(send(client, "zb", 2, 0) == 2);
    CHECK(next(&rov, 11, &bytes) && bytes == 0);
    CHECK(recv(s9, got, sizeof got, 0) == 2 && memcmp(got, "zb", 2) == 0);
    CHECK(closesocket(s9) == 0 && closesocket(client) == 0);

    /* AcceptEx fetched the Windows way, through WSAIoctl; ConnectEx with a first block. */
    GUID gaccept = WSAID_ACCEPTEX, gconnect = WSAID_CONNECTEX;
    LPFN_ACCEPTEX pAcceptEx = NULL;
    LPFN_CONNECTEX pConnectEx = NULL;
    DWORD ret = 0;
    CHECK(WSAIoctl(listener, SIO_GET_EXTENSION_FUNCTION_POINTER, &gaccept, sizeof gaccept, &pAcceptEx,
                   sizeof pAcceptEx, &ret, NULL, NULL) == 0 && pAcceptEx == AcceptEx && ret == sizeof pAcceptEx);
    CHECK(WSAIoctl(listener, SIO_GET_EXTENSION_FUNCTION_POINTER, &gconnect, sizeof gconnect, &pConnectEx,
                   sizeof pConnectEx, &ret, NULL, NULL) == 0 && pConnectEx == ConnectEx);
    CHECK(WSAIoctl(listener, 0x1234, NULL, 0, NULL, 0, &ret, NULL, NULL) == SOCKET_ERROR &&
          WSAGetLastError() == WSAEOPNOTSUPP);
    memset(&aov, 0, sizeof aov);
    SOCKET s5 = WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
    CHECK_FAILS_WITH(pAcceptEx(listener, s5, dbuf, 16, ADDR_LEN, ADDR_LEN, &bytes, &aov), ERROR_IO_PENDING);
    SOCKET c5 = WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
    struct sockaddr_in any;
    memset(&any, 0, sizeof any);
    any.sin_family = AF_INET;
    CHECK(bind(c5, (struct sockaddr *)&any, sizeof any) == 0); /* ConnectEx wants a bound socket */
    CHECK(CreateIoCompletionPort((HANDLE)c5, port, 5, 0) == port);
    OVERLAPPED cov;
    memset(&cov, 0, sizeof cov);
    CHECK_FAILS_WITH(pConnectEx(c5, (struct sockaddr *)&where, sizeof where, (PVOID) "hi there", 8, NULL, &cov),
                     ERROR_IO_PENDING);
    /* Two packets, in either order: the connect (with its 8 bytes sent), the accept (with them). */
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        ULONG_PTR k;
        LPOVERLAPPED o;
        CHECK(GetQueuedCompletionStatus(port, &bytes, &k, &o, 5000));
        if (o == &cov) { CHECK(k == 5 && bytes == 8); seen |= 1; }
        if (o == &aov) { CHECK(k == 1 && bytes == 8 && memcmp(dbuf, "hi there", 8) == 0); seen |= 2; }
    }
    CHECK(seen == 3);
    CHECK(closesocket(c5) == 0 && closesocket(s5) == 0);

    /* UDP: WSASendTo and WSARecvFrom, the sender's address delivered with the packet. */
    SOCKET u1 = WSASocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, WSA_FLAG_OVERLAPPED);
    SOCKET u2 = WSASocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, WSA_FLAG_OVERLAPPED);
    struct sockaddr_in a1, a2;
    memset(&a1, 0, sizeof a1);
    a1.sin_family = AF_INET;
    a1.sin_addr.s_addr = inet_addr("127.0.0.1");
    a2 = a1;
    CHECK(bind(u1, (struct sockaddr *)&a1, sizeof a1) == 0 && bind(u2, (struct sockaddr *)&a2, sizeof a2) == 0);
    len = sizeof a1;
    CHECK(getsockname(u1, (struct sockaddr *)&a1, &len) == 0);
    len = sizeof a2;
    CHECK(getsockname(u2, (struct sockaddr *)&a2, &len) == 0);
    CHECK(CreateIoCompletionPort((HANDLE)u1, port, 6, 0) == port && CreateIoCompletionPort((HANDLE)u2, port, 7, 0) == port);
    struct sockaddr_in from;
    int fromlen = sizeof from;
    memset(&from, 0, sizeof from);
    OVERLAPPED uov, sov2;
    memset(&uov, 0, sizeof uov);
    memset(&sov2, 0, sizeof sov2);
    CHECK(WSARecvFrom(u1, bufs, 2, NULL, &flags, (struct sockaddr *)&from, &fromlen, &uov, NULL) == SOCKET_ERROR &&
          WSAGetLastError() == WSA_IO_PENDING);
    WSABUF dg = {7, (char *)"datagram"};
    r = WSASendTo(u2, &dg, 1, NULL, 0, (struct sockaddr *)&a1, sizeof a1, &sov2, NULL);
    CHECK(r == 0 || WSAGetLastError() == WSA_IO_PENDING);
    seen = 0;
    for (int i = 0; i < 2; i++) {
        ULONG_PTR k;
        LPOVERLAPPED o;
        CHECK(GetQueuedCompletionStatus(port, &bytes, &k, &o, 5000));
        if (o == &uov) {
            CHECK(k == 6 && bytes == 7 && memcmp(b1, "data", 4) == 0 && memcmp(b2, "gra", 3) == 0);
            CHECK(fromlen == sizeof from && from.sin_port == a2.sin_port && from.sin_addr.s_addr == a2.sin_addr.s_addr);
            seen |= 1;
        }
        if (o == &sov2) { CHECK(k == 7 && bytes == 7); seen |= 2; }
    }
    CHECK(seen == 3);
    CHECK(closesocket(u1) == 0 && closesocket(u2) == 0);

    /* closesocket wakes a thread blocked in accept on that socket: WSAEINTR. */
    SOCKET l2 = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    struct sockaddr_in any2;
    memset(&any2, 0, sizeof any2);
    any2.sin_family = AF_INET;
    any2.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(l2, (struct sockaddr *)&any2, sizeof any2) == 0 && listen(l2, 1) == 0);
    HANDLE acc = CreateThread(NULL, 0, blocked_accept, (LPVOID)l2, 0, NULL);
    Sleep(100);
    CHECK(WaitForSingleObject(acc, 0) == WAIT_TIMEOUT);
    CHECK(closesocket(l2) == 0);
    CHECK(WaitForSingleObject(acc, 10000) == WAIT_OBJECT_0);
    DWORD acc_code;
    CHECK(GetExitCodeThread(acc, &acc_code) && acc_code == WSAEINTR);
    CloseHandle(acc);

    /* GQCSEx delivers a failed operation as an entry whose OVERLAPPED holds the status. */
    SOCKET s7 = accept_ex(listener, &client, 9);
    memset(&rov, 0, sizeof rov);
    CHECK(WSARecv(s7, bufs, 2, NULL, &flags, &rov, NULL) == SOCKET_ERROR && WSAGetLastError() == WSA_IO_PENDING);
    CHECK(CancelIoEx((HANDLE)s7, NULL));
    {
        OVERLAPPED_ENTRY e[4];
        ULONG removed = 0;
        CHECK(GetQueuedCompletionStatusEx(port, e, 4, &removed, 5000, FALSE));
        CHECK(removed == 1 && e[0].lpOverlapped == &rov && e[0].lpCompletionKey == 9);
        CHECK(e[0].dwNumberOfBytesTransferred == 0 && rov.Internal == STATUS_CANCELLED);
    }
    CHECK(closesocket(s7) == 0 && closesocket(client) == 0);

    /* Closing a port with a receive pending, then its socket: nothing leaks (valgrind). */
    HANDLE p2 = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0);
    SOCKET c8 = connect_client();
    SOCKET s8 = accept(listener, NULL, NULL);
    CHECK(s8 != INVALID_SOCKET);
    CHECK(CreateIoCompletionPort((HANDLE)s8, p2, 10, 0) == p2);
    static OVERLAPPED leak_ov;
    static char leak_buf[4096];
    WSABUF lb = {sizeof leak_buf, leak_buf};
    CHECK(WSARecv(s8, &lb, 1, NULL, &flags, &leak_ov, NULL) == SOCKET_ERROR && WSAGetLastError() == WSA_IO_PENDING);
    CHECK(CloseHandle(p2));
    CHECK(closesocket(s8) == 0 && closesocket(c8) == 0);

    /* Address text both ways. */
    {
        char text[INET6_ADDRSTRLEN];
        struct in_addr a4;
        struct in6_addr a6;
        CHECK(inet_pton(AF_INET, "10.1.2.3", &a4) == 1 && a4.S_un.S_un_b.s_b1 == 10 && a4.S_un.S_un_b.s_b4 == 3);
        CHECK(inet_pton(AF_INET, "10.1.2", &a4) == 0);
        CHECK(strcmp(inet_ntop(AF_INET, &a4, text, sizeof text), "10.1.2.3") == 0);
        CHECK(strcmp(inet_ntoa(a4), "10.1.2.3") == 0);
        CHECK(InetPtonA(AF_INET6, "::1", &a6) == 1 && a6.s6_addr[15] == 1);
        CHECK(strcmp(InetNtopA(AF_INET6, &a6, text, sizeof text), "::1") == 0);
        CHECK(inet_ntop(AF_INET, &a4, text, 4) == NULL && WSAGetLastError() == WSAEINVAL);
        CHECK(inet_addr("127.0.0.1") == htonl(INADDR_LOOPBACK) && inet_addr("nope") == INADDR_NONE);
    }

    /* Bad sockets. */
    CHECK(closesocket((SOCKET)0x1234) == SOCKET_ERROR && WSAGetLastError() == WSAENOTSOCK);
    CHECK(closesocket(s) == SOCKET_ERROR && WSAGetLastError() == WSAENOTSOCK);
    CHECK(WSARecv(s, bufs, 2, NULL, &flags, &rov, NULL) == SOCKET_ERROR && WSAGetLastError() == WSAENOTSOCK);
    CHECK(send((SOCKET)port, "x", 1, 0) == SOCKET_ERROR && WSAGetLastError() == WSAENOTSOCK);

    CHECK(closesocket(listener) == 0);
    CHECK(CloseHandle(port));
    CHECK(WSACleanup() == 0);
    CHECK(WSACleanup() == SOCKET_ERROR && WSAGetLastError() == WSANOTINITIALISED);
    DONE("net");
}
