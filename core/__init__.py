"""The product's shared kernel: pieces every app may import and that import no app."""
