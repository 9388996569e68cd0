"""HATEOAS adapter (placeholder until written)."""
from flask import Blueprint
blueprint = Blueprint("hateoas", __name__, url_prefix="/hateoas")
