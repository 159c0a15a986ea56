// Package certs holds no Go code: it ships the scripts and documentation that
// install the Cafilprox CA certificate into operating system, JVM and
// container trust stores (see README.md). Its tests check the scripts.
package certs
