"""The detectors, one package each, and the registry that everything else reads them from."""
from aigid.methods.apn.spec import APN
from aigid.methods.gendet.spec import GENDET
from aigid.methods.lol.spec import LOL
from aigid.methods.rine.spec import RINE
from aigid.methods.spec import MethodSpec
from aigid.methods.univfd.spec import UNIVFD

METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in (LOL, RINE, APN, GENDET, UNIVFD)}
