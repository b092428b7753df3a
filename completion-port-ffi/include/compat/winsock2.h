/* Windows code compiled against libiocp: see iocp.h. Windows sources carry MSVC pragmas
 * (#pragma comment(lib, "ws2_32.lib"), #pragma warning(...)) that mean nothing here: Clang
 * and GCC 13+ are told here not to warn about unknown pragmas in the files that include
 * this; older g++ ignores this request (GCC bug 53431): add -Wno-unknown-pragmas. */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif
#include "../iocp.h"
