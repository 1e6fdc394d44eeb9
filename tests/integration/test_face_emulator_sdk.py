"""The official azure-ai-vision-face SDK (1.0.0b2) against the emulator, unchanged."""

from __future__ import annotations

from azure.ai.vision.face import FaceAdministrationClient, FaceClient
from azure.ai.vision.face.models import FaceDetectionModel, FaceRecognitionModel
from azure.core.credentials import AzureKeyCredential

from tests.fixtures.face_emulator import FaceEmulator
from tests.fixtures.paths import face_bytes


def test_sdk_enroll_identify_verify_delete(face_api: FaceEmulator) -> None:
    cred = AzureKeyCredential("local-key")
    admin = FaceAdministrationClient(endpoint=face_api.endpoint, credential=cred)
    client = FaceClient(endpoint=face_api.endpoint, credential=cred)
    lpg = admin.large_person_group
    lpg.create("sdk-group", name="SDK group", recognition_model=FaceRecognitionModel.RECOGNITION04)
    person = lpg.create_person("sdk-group", name="lady", user_data="no PII")
    added = lpg.add_face("sdk-group", person.person_id, face_bytes("family2-lady/1.jpg"),
                         detection_model=FaceDetectionModel.DETECTION03, user_data="photo 1")
    assert added.persisted_face_id
    lpg.begin_train("sdk-group").result()
    assert lpg.get_training_status("sdk-group").status == "succeeded"
    [face] = client.detect(face_bytes("family2-lady/3.jpg"), detection_model=FaceDetectionModel.DETECTION03,
                           recognition_model=FaceRecognitionModel.RECOGNITION04, return_face_id=True)
    assert face.face_id and face.face_rectangle.width > 50
    [result] = client.identify_from_large_person_group(face_ids=[face.face_id], large_person_group_id="sdk-group")
    assert result.candidates[0].person_id == person.person_id and result.candidates[0].confidence >= 0.5
    verify = client.verify_from_large_person_group(face_id=face.face_id, large_person_group_id="sdk-group",
                                                   person_id=person.person_id)
    assert verify.is_identical and verify.confidence >= 0.5
    lpg.delete_person("sdk-group", person.person_id)
    assert lpg.get_persons("sdk-group") == []
    assert person.person_id in face_api.stats()["personIds"]
    admin.close()
    client.close()
