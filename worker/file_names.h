// Where a download goes: a file name taken from its URL, made safe. A master
// chooses the URL, the worker's machine owns the disk: the name can never
// leave the output directory, hide itself, or carry control characters.
#ifndef TASKQ_WORKER_FILE_NAMES_H_
#define TASKQ_WORKER_FILE_NAMES_H_

#include <string>
#include <string_view>

#include "proto/status.h"

namespace taskq {

// The last segment of the URL's path, percent-decoded, then: what follows
// the last separator it holds ('/' or '\\', once encoded), control
// characters made '_', leading and trailing dots and spaces removed (so no
// "..", no ".hidden"), at most 200 bytes (keeping the extension).
// "download" when nothing is left.
std::string SafeFileName(std::string_view url);

// How many numbered names a clash may use before a save gives up.
constexpr int kMaxNumberedNames = 10000;

// name for n == 0, else "stem (n).ext": "photo (2).jpg".
std::string NumberedName(const std::string& name, int n);

// Moves the file at from to dir/name, or to "dir/stem (1).ext",
// "dir/stem (2).ext", ... if that name is taken: never over an existing
// file. Returns the path used.
Result<std::string> RenameUnique(const std::string& from, const std::string& dir,
                                 const std::string& name);

}  // namespace taskq

#endif  // TASKQ_WORKER_FILE_NAMES_H_
