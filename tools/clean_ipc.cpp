// corelab_clean_ipc — `./course clean-ipc`'s sweep of /dev/shm.
//
// Removes the shared-memory segments and message queues (/dev/shm/corelab.*)
// of this user that no process holds any more, by the library's own rule
// (ipc::remove_stale in corelab/ipc/names.hpp: an object goes when the sweep
// can lock it, so its creator is gone, whatever pid namespace it ran in;
// a live run's objects are locked and kept; symlinks are never followed).
// Prints one line per object removed: `removed NAME (no process holds it)`.
// Exit 0, or 2 with a usage line when given arguments.
#include <iostream>  // std::cout, std::cerr

#include "corelab/ipc/names.hpp"  // remove_stale

int main(int argc, char**) {
    if (argc != 1) {
        std::cerr << "usage: corelab_clean_ipc (no arguments; ./course clean-ipc runs it)\n";
        return 2;
    }
    for (const auto& name : corelab::ipc::remove_stale()) std::cout << "removed " << name << " (no process holds it)\n";
    return 0;
}
