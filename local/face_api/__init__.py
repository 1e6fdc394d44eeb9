"""Local Azure Face API emulator backed by a real face model. Run ``python -m local.face_api``."""
