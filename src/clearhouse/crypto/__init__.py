"""Cryptography adapters: Ed25519 keys and signatures, digests."""
