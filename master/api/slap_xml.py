"""SLAP XML adapter (placeholder until written)."""
from flask import Blueprint
blueprint = Blueprint("slap_xml", __name__)
