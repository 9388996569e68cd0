"""JSON API adapter (placeholder until written)."""
from flask import Blueprint
blueprint = Blueprint("json_rpc", __name__)
