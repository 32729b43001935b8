{% call dependent("PersistentVolumeClaim", ["The " ~ kind ~ "'s PersistentVolumeClaim: a volume of `storage` bytes, mounted by one node at a", "time. Claims can grow but not shrink, and only where the storage class allows expansion."]) %}
        PersistentVolumeClaim {
            metadata: metadata({= var =}),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some([("storage".to_string(), Quantity({= var =}.spec.storage.clone()))].into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
{% endcall %}
