//go:build e2e || netns || dockere2e || kube

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// boto3Python finds a Python that can import boto3: python3 on PATH, else a
// pyenv version (CI's has boto3; Debian's /usr/bin/python3 has not). A
// machine without one fails the test rather than skip it: the boto3 checks
// must not silently stop running.
func boto3Python(t *testing.T) string {
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		root = filepath.Join(os.Getenv("HOME"), ".pyenv")
	}
	versions, _ := filepath.Glob(filepath.Join(root, "versions", "*", "bin", "python3"))
	candidates = append(candidates, versions...)
	for _, c := range candidates {
		out, err := exec.Command(c, "-c", "import sys, boto3; print(sys.executable)").Output()
		if err == nil {
			if p := strings.TrimSpace(string(out)); filepath.IsAbs(p) {
				return p
			}
		}
	}
	t.Fatalf("no python3 with boto3 among %q: CI's pyenv Python has it", candidates)
	return ""
}
