"""Server-rendered live dashboard (filled in below)."""

from fastapi import APIRouter

router = APIRouter()
