// Package docs holds trustgate's documentation (Markdown). Its test keeps
// every relative link of README.md and docs/*.md resolving: the file exists,
// and an #anchor names a heading of it as GitHub renders it.
package docs
