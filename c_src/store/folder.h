/*
 * folder.h: making a folder's entries durable. A file's fsync covers its
 * content, not its name: a file just created (or renamed into place) may be
 * missing after a power cut until its folder is fsynced too.
 */
#ifndef GEN_CNODE_FOLDER_H
#define GEN_CNODE_FOLDER_H

/* fsync the folder that holds path. 0, or -1 with errno. */
int folder_sync(const char *path);

#endif
